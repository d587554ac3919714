"""Tests for storage.db and storage.migrations: connection settings, schema, restart."""

from __future__ import annotations

import logging
import os
import time

import pytest
import sqlalchemy as sa

from core.settings import load_settings
from storage import migrations, records
from storage.blobs import BlobStore
from storage.db import Database, make_engine
from tests.storage._factories import save_sample_scan


def test_sqlite_pragmas_hold_on_every_connection(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        connections = [engine.raw_connection() for _ in range(3)]
        for raw in connections:
            cursor = raw.cursor()
            assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
            assert cursor.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        for raw in connections:
            raw.close()
    finally:
        engine.dispose()


def test_default_database_is_a_sqlite_file_under_data_dir(tmp_path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path), "ADMIN_PASSWORD": "first-admin-pass"})
    db = Database.open(settings)
    db.close()
    assert (tmp_path / "app.db").is_file()
    assert (tmp_path / "master.key").is_file()
    assert (tmp_path / "blobs").is_dir()


def test_reopen_keeps_data_and_applies_no_migration_twice(settings, database, make_user) -> None:
    make_user("alice")
    database.close()
    again = Database.open(settings)
    try:
        with again.engine.connect() as conn:
            versions = conn.execute(sa.text("SELECT version FROM schema_version")).scalars().all()
            users = conn.execute(sa.text("SELECT username FROM users ORDER BY id")).scalars().all()
        assert versions == [number for number, _, _ in migrations.MIGRATIONS]
        assert users == ["admin", "alice"]
    finally:
        again.close()


def test_pending_migration_steps_run_in_order_once(database, monkeypatch) -> None:
    applied: list[int] = []

    def step(number):
        def _run(conn):
            applied.append(number)
            conn.execute(sa.text(f"CREATE TABLE extra_{number} (id INTEGER PRIMARY KEY)"))
        return _run

    extra = ((2, "two", step(2)), (3, "three", step(3)))
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + extra)
    assert migrations.apply_migrations(database.engine) == 3
    assert migrations.apply_migrations(database.engine) == 3
    assert applied == [2, 3]


def test_failing_migration_rolls_back_entirely(database, monkeypatch) -> None:
    def good(conn):
        conn.execute(sa.text("CREATE TABLE extra_good (id INTEGER PRIMARY KEY)"))

    def bad(conn):
        raise RuntimeError("boom")

    monkeypatch.setattr(migrations, "MIGRATIONS",
                        migrations.MIGRATIONS + ((2, "good", good), (3, "bad", bad)))
    with pytest.raises(RuntimeError):
        migrations.apply_migrations(database.engine)
    with database.engine.connect() as conn:
        assert migrations.current_version(conn) == 1
        assert not sa.inspect(conn).has_table("extra_good")


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

    with caplog.at_level(logging.WARNING, logger="storage.db"):
        again = Database.open(settings)
    try:
        remaining = {p.name for p in again.blobs.root.iterdir()}
        assert remaining == {kept_blob.name, young_orphan.name, "README"}
        assert "Deleted 2 orphaned image file(s)" in caplog.text
        assert records.load_scan(again, alice, scan_id).filename == "chest_front.png"
    finally:
        again.close()
