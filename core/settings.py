"""Application settings, read once from the environment with working local defaults.

Every path, URL, limit and secret of the app lives here so that no other module
reads ``os.environ`` directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Values that must never protect real data: refused outside local use.
_PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "admin"})


class SettingsError(UserError, ValueError):
    """Raised when the environment describes an unsafe or unusable configuration.

    The sentence names the setting to fix, for whoever runs the app; it never repeats a secret.
    """

    code = "settings"
    default_message = "The app is not configured correctly."


@dataclass(frozen=True)
class Settings:
    """All configuration of the app.

    Attributes:
        environment: ``local`` (developer machine, permissive defaults) or
            ``production`` (placeholder secrets refused).
        data_dir: Where the SQLite database, encrypted blobs and the local key
            file live (``DATA_DIR``).
        shared_data_dir: Real radiographs for training, evaluation and tests
            (``SHARED_DATA_DIR``), never copied into the repository.
        max_upload_bytes: Largest accepted upload (``MAX_UPLOAD_MB``).
        database_url: Any SQLAlchemy URL (``DATABASE_URL``); defaults to a
            SQLite file under ``data_dir``.
        master_key: Base64 master key wrapping every user's data key
            (``MASTER_KEY``); ``None`` means a local key file is used.
        idle_timeout_minutes: Session idle timeout (``IDLE_TIMEOUT_MINUTES``).
        admin_username: First admin's name (``ADMIN_USERNAME``).
        admin_password: First admin's password (``ADMIN_PASSWORD``); ``None``
            means a one-time password is generated and printed on first start.
        checkpoint_path: The classifier checkpoint (``MODEL_CHECKPOINT``).
        user_quota_bytes: Most bytes of stored images one patient may keep
            (``USER_QUOTA_MB``).
        uploads_per_hour: Most scans one patient may store per hour (``UPLOADS_PER_HOUR``).
        registrations_per_hour: Most self-registered accounts per hour in all
            (``REGISTRATIONS_PER_HOUR``).
        registrations_per_client_per_hour: Most self-registered accounts per hour from one
            client (``REGISTRATIONS_PER_CLIENT_PER_HOUR``).
    """

    environment: str
    data_dir: Path
    shared_data_dir: Path
    max_upload_bytes: int
    database_url: str
    master_key: str | None
    idle_timeout_minutes: int
    admin_username: str
    admin_password: str | None
    checkpoint_path: Path
    user_quota_bytes: int
    uploads_per_hour: int
    registrations_per_hour: int
    registrations_per_client_per_hour: int

    @property
    def is_local(self) -> bool:
        """Whether this is a developer's machine rather than a deployment."""
        return self.environment == "local"

    @property
    def blob_dir(self) -> Path:
        """Directory of encrypted image blobs."""
        return self.data_dir / "blobs"

    @property
    def key_file(self) -> Path:
        """Local-only master key file used when ``MASTER_KEY`` is unset."""
        return self.data_dir / "master.key"


def _int_env(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}.") from exc
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}.")
    return value


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from environment variables.

    Args:
        env: Mapping to read instead of ``os.environ`` (tests).

    Returns:
        The validated settings.

    Raises:
        SettingsError: A value is malformed, or a placeholder secret is used
            outside local use.
    """
    env = dict(os.environ if env is None else env)
    environment = env.get("APP_ENV", "local").strip().lower()
    if environment not in {"local", "production"}:
        raise SettingsError(f"APP_ENV must be 'local' or 'production', got {environment!r}.")
    data_dir = Path(env.get("DATA_DIR") or PROJECT_ROOT / ".data").expanduser().resolve()
    shared = Path(env.get("SHARED_DATA_DIR") or PROJECT_ROOT.parent / "shared" / "data")
    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'app.db'}"
    master_key = env.get("MASTER_KEY") or None
    admin_password = env.get("ADMIN_PASSWORD") or None
    if environment != "local":
        if master_key is None or master_key.strip().lower() in _PLACEHOLDER_SECRETS:
            raise SettingsError("MASTER_KEY must be set to a real key outside local use.")
        if admin_password is not None and admin_password.strip().lower() in _PLACEHOLDER_SECRETS:
            raise SettingsError("ADMIN_PASSWORD is a placeholder; choose a real password.")
    return Settings(
        environment=environment,
        data_dir=data_dir,
        shared_data_dir=shared.expanduser().resolve(),
        max_upload_bytes=_int_env(env, "MAX_UPLOAD_MB", 50) * 1024 * 1024,
        database_url=database_url,
        master_key=master_key,
        idle_timeout_minutes=_int_env(env, "IDLE_TIMEOUT_MINUTES", 15),
        admin_username=env.get("ADMIN_USERNAME") or "admin",
        admin_password=admin_password,
        checkpoint_path=Path(
            env.get("MODEL_CHECKPOINT") or PROJECT_ROOT / "models" / "checkpoint.pt"
        ).resolve(),
        # 2 GB holds about 4000 scans at the stored working resolution (~0.5 MB each).
        user_quota_bytes=_int_env(env, "USER_QUOTA_MB", 2048) * 1024 * 1024,
        # Two a minute for an hour covers a patient importing an archive folder by folder.
        uploads_per_hour=_int_env(env, "UPLOADS_PER_HOUR", 120),
        registrations_per_hour=_int_env(env, "REGISTRATIONS_PER_HOUR", 60),
        # A family or a clinic sharing one address registers a few accounts, not dozens.
        registrations_per_client_per_hour=_int_env(env, "REGISTRATIONS_PER_CLIENT_PER_HOUR", 5),
    )
