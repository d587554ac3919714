"""Tests for storage.passwords: the argon2 cost profiles (the policy is tested through accounts)."""

from __future__ import annotations

import base64
import secrets

import pytest

from core.settings import SettingsError, load_settings
from storage import passwords

_PRODUCTION = {
    "APP_ENV": "production",
    "MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    "COOKIE_SECRET": secrets.token_urlsafe(32),
}


def test_production_cost_is_the_default_everywhere() -> None:
    assert passwords.hasher({}) is passwords.HASHER
    assert passwords.hasher({**_PRODUCTION, "ARGON2_PROFILE": "production"}) is passwords.HASHER
    assert passwords.HASHER.hash("x").startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_production_refuses_the_cheap_profile_at_start_and_at_use() -> None:
    cheap = {**_PRODUCTION, "ARGON2_PROFILE": "test"}
    with pytest.raises(SettingsError, match="ARGON2_PROFILE"):
        load_settings(cheap)
    with pytest.raises(SettingsError, match="ARGON2_PROFILE"):
        passwords.hasher(cheap)
    with pytest.raises(SettingsError, match="ARGON2_PROFILE"):
        passwords.hasher({"ARGON2_PROFILE": "fast"})


def test_the_suite_hashes_cheaply_unless_a_test_asks_for_production() -> None:
    assert passwords.hasher() is passwords.TEST_HASHER
    assert passwords.hash_password("a long password").startswith("$argon2id$v=19$m=8,t=1,p=1$")


@pytest.mark.usefixtures("production_argon2")
def test_a_cheap_hash_is_upgraded_under_the_production_profile() -> None:
    cheap = passwords.TEST_HASHER.hash("a long password")
    assert passwords.verify_password(cheap, "a long password")
    assert passwords.needs_rehash(cheap)
    assert passwords.hash_password("a long password").startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.dummy_hash().startswith("$argon2id$v=19$m=19456,t=2,p=1$")
