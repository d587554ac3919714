"""Tests for core.settings: defaults, environment overrides, and refusal of unsafe values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT, SettingsError, load_settings

MB = 1024 * 1024


def test_defaults_work_locally_without_any_environment() -> None:
    settings = load_settings({})
    assert settings.environment == "local" and settings.is_local
    assert settings.data_dir == (PROJECT_ROOT / ".data").resolve()
    assert settings.shared_data_dir == (PROJECT_ROOT.parent / "shared" / "data").resolve()
    assert settings.max_upload_bytes == 50 * MB
    assert settings.database_url == f"sqlite:///{settings.data_dir / 'app.db'}"
    assert settings.master_key is None
    assert settings.idle_timeout_minutes == 15
    assert settings.admin_username == "admin"
    assert settings.admin_password is None
    assert settings.checkpoint_path == (PROJECT_ROOT / "models" / "checkpoint.pt").resolve()
    assert settings.blob_dir == settings.data_dir / "blobs"
    assert settings.key_file == settings.data_dir / "master.key"
    assert settings.user_quota_bytes == 2048 * MB
    assert settings.uploads_per_hour == 120
    assert settings.registrations_per_hour == 60
    assert settings.registrations_per_client_per_hour == 5
    assert settings.registrations_per_network_per_hour == 10
    assert settings.emergency_independence_days == 30
    assert settings.inference_threads == 1


def test_inference_threads_are_configurable() -> None:
    assert load_settings({"INFERENCE_THREADS": "2"}).inference_threads == 2


def test_abuse_limits_are_configurable() -> None:
    settings = load_settings(
        {
            "USER_QUOTA_MB": "10",
            "UPLOADS_PER_HOUR": "3",
            "REGISTRATIONS_PER_HOUR": "20",
            "REGISTRATIONS_PER_CLIENT_PER_HOUR": "2",
        }
    )
    assert settings.user_quota_bytes == 10 * MB
    assert settings.uploads_per_hour == 3
    assert settings.registrations_per_hour == 20
    assert settings.registrations_per_client_per_hour == 2


def test_environment_overrides(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "SHARED_DATA_DIR": str(tmp_path / "shared"),
            "MAX_UPLOAD_MB": "5",
            "DATABASE_URL": "postgresql+psycopg://u@db/app",
            "IDLE_TIMEOUT_MINUTES": "30",
            "ADMIN_USERNAME": "root",
            "ADMIN_PASSWORD": "a long real passphrase",
            "MODEL_CHECKPOINT": str(tmp_path / "model.pt"),
        }
    )
    assert settings.data_dir == (tmp_path / "data").resolve()
    assert settings.shared_data_dir == (tmp_path / "shared").resolve()
    assert settings.max_upload_bytes == 5 * MB
    assert settings.database_url == "postgresql+psycopg://u@db/app"
    assert settings.idle_timeout_minutes == 30
    assert settings.admin_username == "root"
    assert settings.admin_password == "a long real passphrase"
    assert settings.checkpoint_path == (tmp_path / "model.pt").resolve()
    assert settings.blob_dir == (tmp_path / "data" / "blobs").resolve()


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_UPLOAD_MB", "7")
    assert load_settings().max_upload_bytes == 7 * MB


@pytest.mark.parametrize(
    "name",
    [
        "MAX_UPLOAD_MB",
        "IDLE_TIMEOUT_MINUTES",
        "USER_QUOTA_MB",
        "UPLOADS_PER_HOUR",
        "REGISTRATIONS_PER_HOUR",
        "REGISTRATIONS_PER_CLIENT_PER_HOUR",
        "REGISTRATIONS_PER_NETWORK_PER_HOUR",
        "EMERGENCY_INDEPENDENCE_DAYS",
        "INFERENCE_THREADS",
        "DB_POOL_SIZE",
        "DB_MAX_OVERFLOW",
        "DB_STATEMENT_TIMEOUT_MS",
    ],
)
@pytest.mark.parametrize("raw", ["abc", "1.5", "0", "-3"])
def test_bad_integers_are_refused(name: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: raw})


def test_database_pool_and_timeout() -> None:
    defaults = load_settings({})
    assert (defaults.db_pool_size, defaults.db_max_overflow) == (5, 10)
    assert defaults.db_statement_timeout_ms == 15_000
    assert load_settings({"DB_STATEMENT_TIMEOUT_MS": "500"}).db_statement_timeout_ms == 500


def test_blank_integer_means_default() -> None:
    assert load_settings({"MAX_UPLOAD_MB": "  "}).max_upload_bytes == 50 * MB


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(SettingsError, match="APP_ENV"):
        load_settings({"APP_ENV": "staging"})


@pytest.mark.parametrize("key", [None, "", "changeme", "CHANGEME ", "secret", "password"])
def test_production_refuses_missing_or_placeholder_master_key(key: str | None) -> None:
    env = {"APP_ENV": "production"}
    if key is not None:
        env["MASTER_KEY"] = key
    with pytest.raises(SettingsError, match="MASTER_KEY"):
        load_settings(env)


def test_production_refuses_placeholder_admin_password() -> None:
    env = {
        "APP_ENV": "production",
        "MASTER_KEY": "c29tZSByZWFsIGtleSBtYXRlcmlhbA==",
        "ADMIN_PASSWORD": "admin",
    }
    with pytest.raises(SettingsError, match="ADMIN_PASSWORD"):
        load_settings(env)


def test_production_accepts_a_real_key() -> None:
    settings = load_settings(
        {
            "APP_ENV": " Production ",
            "MASTER_KEY": "c29tZSByZWFsIGtleSBtYXRlcmlhbA==",
            "COOKIE_SECRET": "x" * 32,
        }
    )
    assert settings.environment == "production" and not settings.is_local
    assert settings.master_key == "c29tZSByZWFsIGtleSBtYXRlcmlhbA=="


def test_local_tolerates_placeholders() -> None:
    settings = load_settings({"MASTER_KEY": "changeme", "ADMIN_PASSWORD": "admin"})
    assert settings.is_local and settings.master_key == "changeme"


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_settings({}).max_upload_bytes = 1  # type: ignore[misc]


@pytest.mark.parametrize("secret", [None, "", "changeme", "short-but-not-a-placeholder"])
def test_production_refuses_missing_or_short_cookie_secret(secret: str | None) -> None:
    env = {"APP_ENV": "production", "MASTER_KEY": "c29tZSByZWFsIGtleSBtYXRlcmlhbA=="}
    if secret is not None:
        env["COOKIE_SECRET"] = secret
    with pytest.raises(SettingsError, match="COOKIE_SECRET"):
        load_settings(env)


def test_trusted_proxies_are_a_comma_separated_list_empty_by_default() -> None:
    assert load_settings({}).trusted_proxies == frozenset()
    proxies = load_settings({"TRUSTED_PROXIES": " 10.0.0.2, ,::1"}).trusted_proxies
    assert proxies == frozenset({"10.0.0.2", "::1"})


def test_session_lifetime_defaults_to_twelve_hours() -> None:
    assert load_settings({}).session_max_hours == 12
    assert load_settings({"SESSION_MAX_HOURS": "2"}).session_max_hours == 2


def test_malformed_trusted_proxy_is_refused() -> None:
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES"):
        load_settings({"TRUSTED_PROXIES": "10.0.0.1, proxy.example"})
