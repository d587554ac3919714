"""Tests for storage.bootstrap: opening, reopening, the master key check and its rotation."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import stat
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from core.errors import UserError
from core.settings import load_settings
from storage import accounts, audit, crypto, migrations, quarantine
from storage.blobs import ANCHORS, QUARANTINE, BlobStore
from storage.bootstrap import (
    StorageMismatch,
    WrongMasterKey,
    open_database,
    pending_key_file,
    rotate_master_key,
)
from storage.crypto import DecryptionError
from storage.keyring import MasterKeyRotated
from storage.scans import load_scan
from tests.storage._factories import sample_pixels, save_sample_scan
from tests.storage.conftest import PASSWORD, empty_backend


def _files(root: Path) -> list[Path]:
    """The files at the top of an image folder (the audit anchors keep a folder of their own)."""
    return [path for path in root.iterdir() if path.is_file()]


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


@pytest.mark.local_blobs  # ages files; tests/storage/test_blob_stores.py covers the bucket
def test_open_quarantines_old_orphaned_blobs_and_deletes_nothing(
    settings, database, make_user, caplog
) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    [kept_blob] = _files(database.blobs.root)
    old_orphan = database.blobs.root / BlobStore.new_name()
    old_tmp = database.blobs.root / f"{BlobStore.new_name()}.tmp"
    young_orphan = database.blobs.root / BlobStore.new_name()
    foreign = database.blobs.root / "README"
    for path in (old_orphan, old_tmp, young_orphan, foreign):
        path.write_bytes(b"x" * 64)
    for path in (kept_blob, old_orphan, old_tmp, foreign):
        _age(path, 25 * 3600)
    _age(young_orphan, 23 * 3600)  # younger than the 24 h an open transaction may need
    database.close()

    with caplog.at_level(logging.WARNING, logger="storage.quarantine"):
        again = open_database(settings)
    try:
        remaining = {p.name for p in again.blobs.root.iterdir()}
        assert remaining == {kept_blob.name, young_orphan.name, "README", QUARANTINE, ANCHORS}
        moved = quarantine.entries(again.blobs)
        assert {e.name for e in moved} == {old_orphan.name, old_tmp.name}
        for entry in moved:
            assert (again.blobs.root / entry.key).read_bytes() == b"x" * 64
        assert "Moved 2 image files with no scan record" in caplog.text
        assert load_scan(again, alice, scan_id).filename == "chest_front.png"
    finally:
        again.close()


@pytest.mark.local_blobs  # ages files; tests/storage/test_blob_stores.py covers the bucket
def test_open_refuses_a_database_without_scans_beside_images(
    settings_env, database, make_user
) -> None:
    """The reported attack: a typo in DATABASE_URL once deleted every image of a patient."""
    alice = make_user("alice")
    save_sample_scan(database, alice, seed=1)
    save_sample_scan(database, alice, seed=2)
    before = {p.name: p.read_bytes() for p in _files(database.blobs.root)}
    for path in _files(database.blobs.root):
        _age(path, 30 * 24 * 3600)
    database.close()
    with (
        empty_backend(
            "sqlite" if settings_env["DATABASE_URL"].startswith("sqlite") else "postgres",
            database.settings.data_dir.parent / "other",
        ) as wrong_url,
        pytest.raises(StorageMismatch) as refused,
    ):
        open_database(load_settings(dict(settings_env, DATABASE_URL=wrong_url)))
    assert isinstance(refused.value, UserError)
    assert "DATABASE_URL" in str(refused.value) and "2 images," in str(refused.value)
    assert {p.name: p.read_bytes() for p in _files(database.blobs.root)} == before
    again = open_database(load_settings(settings_env))
    again.close()
    assert {p.name: p.read_bytes() for p in _files(database.blobs.root)} == before


@pytest.mark.local_blobs  # ages files
def test_a_replica_starting_during_the_first_upload_is_not_refused(settings_env, database) -> None:
    """Another replica's first upload stores its image before its scan row commits; a replica
    starting in between was refused as if beside the wrong database."""
    database.blobs.write(BlobStore.new_name(), b"sealed image of an upload in flight")
    open_database(load_settings(settings_env)).close()
    (image,) = _files(database.blobs.root)
    _age(image, 20 * 60)  # no upload is in flight that long: the image is another database's
    with pytest.raises(StorageMismatch):
        open_database(load_settings(settings_env))
    assert _files(database.blobs.root) == [image]


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


def _key_file_settings(settings_env):
    return load_settings({k: v for k, v in settings_env.items() if k != "MASTER_KEY"})


def _commit_rotation(db, settings, new: bytes) -> None:
    """The rotation command up to its commit: new key file written beside the old, then commit."""
    crypto.write_key_file(pending_key_file(settings), new)
    rotate_master_key(db, new)


def test_rotation_reaches_a_running_process_that_registers_a_user(settings_env) -> None:
    """The reported bug: a live process wrapped new users' keys with the retired key."""
    settings = _key_file_settings(settings_env)
    rotating, running = open_database(settings), open_database(settings)
    new = crypto.new_master_key()
    try:
        alice = accounts.register(rotating, "alice", PASSWORD)
        alice_scan = save_sample_scan(rotating, alice, seed=3)
        _commit_rotation(rotating, settings, new)
        pending_key_file(settings).replace(settings.key_file)
        bob = accounts.register(running, "bob", PASSWORD)
        bob_scan = save_sample_scan(running, bob, seed=4)
    finally:
        rotating.close()
        running.close()
    reopened = open_database(settings)
    try:
        assert crypto.decode_master_key(settings.key_file.read_text()) == new
        bob = accounts.authenticate(reopened, "bob", PASSWORD, None)
        np.testing.assert_array_equal(load_scan(reopened, bob, bob_scan).pixels, sample_pixels(4))
        assert load_scan(reopened, alice, alice_scan).filename == "chest_front.png"
        assert audit.verify_chain(reopened).ok
    finally:
        reopened.close()


def test_a_running_process_without_the_new_key_refuses(settings_env) -> None:
    rotating, running = (
        open_database(load_settings(settings_env)),
        open_database(load_settings(settings_env)),
    )
    new = crypto.new_master_key()
    try:
        rotate_master_key(rotating, new)
        with pytest.raises(MasterKeyRotated) as refused:
            accounts.register(running, "bob", PASSWORD)
        assert isinstance(refused.value, UserError)
        with pytest.raises(MasterKeyRotated):
            audit.verify_chain(running)
    finally:
        rotating.close()
        running.close()
    moved = dict(settings_env, MASTER_KEY=crypto.encode_master_key(new))
    reopened = open_database(load_settings(moved))
    try:
        with pytest.raises(accounts.AccountError):
            accounts.find_actor(reopened, "bob")
        assert audit.verify_chain(reopened).ok
    finally:
        reopened.close()


def test_crash_between_commit_and_key_file_rename_recovers_at_next_start(settings_env) -> None:
    settings = _key_file_settings(settings_env)
    db = open_database(settings)
    alice = accounts.register(db, "alice", PASSWORD)
    scan_id = save_sample_scan(db, alice, seed=6)
    new = crypto.new_master_key()
    _commit_rotation(db, settings, new)  # ... and the process dies before the rename
    db.close()
    reopened = open_database(settings)
    try:
        assert crypto.decode_master_key(settings.key_file.read_text()) == new
        assert not pending_key_file(settings).exists()
        np.testing.assert_array_equal(load_scan(reopened, alice, scan_id).pixels, sample_pixels(6))
        assert audit.verify_chain(reopened).ok
    finally:
        reopened.close()


def test_crash_before_commit_keeps_the_old_key_and_a_wrong_key_file_is_named(
    settings_env,
) -> None:
    settings = _key_file_settings(settings_env)
    open_database(settings).close()
    old = settings.key_file.read_text()
    crypto.write_key_file(pending_key_file(settings), crypto.new_master_key())
    open_database(settings).close()
    assert settings.key_file.read_text() == old
    crypto.write_key_file(settings.key_file, crypto.new_master_key())
    with pytest.raises(WrongMasterKey) as refused:
        open_database(settings)
    assert str(settings.key_file) in str(refused.value)
    assert isinstance(refused.value, UserError)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_are_owner_only_even_when_data_dir_existed(tmp_path) -> None:
    data_dir, blobs = tmp_path / "data", tmp_path / "data" / "blobs"
    blobs.mkdir(parents=True)
    for folder in (data_dir, blobs):
        os.chmod(folder, 0o755)
    settings = load_settings({"DATA_DIR": str(data_dir), "ADMIN_PASSWORD": "first-admin-pass"})
    database, key = data_dir / "app.db", data_dir / "master.key"
    expected = {
        database: 0o600,
        data_dir / "app.db-wal": 0o600,
        data_dir / "app.db-shm": 0o600,
        key: 0o600,
        blobs: 0o700,
    }
    umask = os.umask(0o022)
    try:
        db = open_database(settings)
        # The pool keeps a connection open, so the WAL files exist now.
        assert {path: _mode(path) for path in expected} == expected
        db.close()
        # Files loosened by hand (a copy, a restore) are tightened at the next start.
        for path in (database, key):
            os.chmod(path, 0o644)
        os.chmod(blobs, 0o755)
        db = open_database(settings)
        assert {path: _mode(path) for path in expected} == expected
        db.close()
    finally:
        os.umask(umask)
