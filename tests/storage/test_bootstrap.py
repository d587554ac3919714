"""Tests for storage.bootstrap: opening, reopening, the master key check and its rotation."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import time

import numpy as np
import pytest
import sqlalchemy as sa

from core.settings import load_settings
from storage import audit, crypto, migrations
from storage.blobs import BlobStore
from storage.bootstrap import open_database, rotate_master_key
from storage.crypto import DecryptionError
from storage.scans import load_scan
from tests.storage._factories import sample_pixels, save_sample_scan


def test_default_database_is_a_sqlite_file_under_data_dir(tmp_path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path), "ADMIN_PASSWORD": "first-admin-pass"})
    db = open_database(settings)
    db.close()
    assert (tmp_path / "app.db").is_file()
    assert (tmp_path / "master.key").is_file()
    assert (tmp_path / "blobs").is_dir()


def test_reopen_keeps_data_and_applies_no_migration_twice(settings, database, make_user) -> None:
    make_user("alice")
    database.close()
    again = open_database(settings)
    try:
        with again.engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all()
            users = conn.execute(sa.text("SELECT username FROM users ORDER BY id")).scalars().all()
        assert versions == [number for number, _, _ in migrations.MIGRATIONS]
        assert users == ["admin", "alice"]
    finally:
        again.close()


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_open_deletes_old_orphaned_blobs_only(settings, database, make_user, caplog) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    [kept_blob] = list(database.blobs.root.iterdir())
    old_orphan = database.blobs.root / BlobStore.new_name()
    old_tmp = database.blobs.root / f"{BlobStore.new_name()}.tmp"
    young_orphan = database.blobs.root / BlobStore.new_name()
    foreign = database.blobs.root / "README"
    for path in (old_orphan, old_tmp, young_orphan, foreign):
        path.write_bytes(b"x" * 64)
    for path in (kept_blob, old_orphan, old_tmp, foreign):
        _age(path, 2 * 3600)
    database.close()

    with caplog.at_level(logging.WARNING, logger="storage.bootstrap"):
        again = open_database(settings)
    try:
        remaining = {p.name for p in again.blobs.root.iterdir()}
        assert remaining == {kept_blob.name, young_orphan.name, "README"}
        assert "Deleted 2 orphaned image file(s)" in caplog.text
        assert load_scan(again, alice, scan_id).filename == "chest_front.png"
    finally:
        again.close()


def test_wrong_master_key_is_refused_at_open(settings_env, database) -> None:
    wrong = dict(settings_env, MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode())
    with pytest.raises(DecryptionError):
        open_database(load_settings(wrong))


def test_master_key_rotation_keeps_records_and_retires_old_key(
    database, make_user, settings_env
) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice, seed=5)
    old = crypto.decode_master_key(settings_env["MASTER_KEY"])
    new = secrets.token_bytes(32)
    assert rotate_master_key(database, new) == 2  # admin and alice
    np.testing.assert_array_equal(load_scan(database, alice, scan_id).pixels, sample_pixels(5))
    database.close()
    with pytest.raises(DecryptionError):
        open_database(load_settings(dict(settings_env, MASTER_KEY=crypto.encode_master_key(old))))
    reopened = open_database(
        load_settings(dict(settings_env, MASTER_KEY=crypto.encode_master_key(new)))
    )
    try:
        assert load_scan(reopened, alice, scan_id).filename == "chest_front.png"
        assert audit.verify_chain(reopened).ok
    finally:
        reopened.close()
