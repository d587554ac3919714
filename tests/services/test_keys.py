"""Master-key rotation (services.keys), from the key file and from MASTER_KEY, on both backends."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core.settings import load_settings
from services.keys import rotate_master_key
from storage import crypto, schema
from storage.accounts import authenticate
from storage.audit import verify_chain
from storage.bootstrap import open_database, pending_key_file
from tests.storage.conftest import ADMIN_PASSWORD


def _rotations(database) -> list[schema.AuditEvent]:
    with database.transaction() as session:
        return list(
            session.exec(
                select(schema.AuditEvent).where(schema.AuditEvent.action == "rotate_master_key")
            ).all()
        )


def test_rotation_with_a_key_file_replaces_the_file(settings_env) -> None:
    env = {name: value for name, value in settings_env.items() if name != "MASTER_KEY"}
    settings = load_settings(env)
    database = open_database(settings)
    old = settings.key_file.read_text()
    try:
        rotation = rotate_master_key(database, None, operator="(test)")
        assert rotation.key_file_replaced and rotation.rewrapped >= 1
        assert crypto.decode_master_key(settings.key_file.read_text()) == rotation.new_key
        assert not pending_key_file(settings).exists()
        (event,) = _rotations(database)
        assert event.actor_username == "(test)"
    finally:
        database.close()
    reopened = open_database(settings)
    try:
        assert authenticate(reopened, "admin", ADMIN_PASSWORD, None).role == "admin"
        assert verify_chain(reopened).ok
    finally:
        reopened.close()
    with pytest.raises(crypto.DecryptionError):
        open_database(load_settings({**env, "MASTER_KEY": old.strip()}))


def test_rotation_to_a_given_key_leaves_master_key_to_the_operator(settings_env) -> None:
    settings = load_settings(settings_env)
    database = open_database(settings)
    new_key = crypto.new_master_key()
    try:
        rotation = rotate_master_key(database, new_key, operator="(test)")
        assert rotation.new_key == new_key and not rotation.key_file_replaced
    finally:
        database.close()
    moved = load_settings({**settings_env, "MASTER_KEY": crypto.encode_master_key(new_key)})
    reopened = open_database(moved)
    try:
        assert verify_chain(reopened).ok
    finally:
        reopened.close()
