"""Tests for storage.migrations: pending steps run in order, once, or not at all."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from storage import migrations, schema
from storage.db import make_engine


def test_pending_migration_steps_run_in_order_once(database, monkeypatch) -> None:
    applied: list[int] = []

    def step(number):
        def _run(conn):
            applied.append(number)
            conn.execute(sa.text(f"CREATE TABLE extra_{number} (id INTEGER PRIMARY KEY)"))

        return _run

    last = migrations.MIGRATIONS[-1][0]
    extra = ((last + 1, "one more", step(last + 1)), (last + 2, "two more", step(last + 2)))
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + extra)
    assert migrations.apply_migrations(database.engine) == last + 2
    assert migrations.apply_migrations(database.engine) == last + 2
    assert applied == [last + 1, last + 2]


def test_a_step_numbered_below_an_applied_one_still_runs(database, monkeypatch) -> None:
    """A step merged out of order (its number below one already applied) is not skipped."""
    ran: list[str] = []
    last = migrations.MIGRATIONS[-1][0]
    late = (last + 2, "applied first", lambda conn: ran.append("late"))
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + (late,))
    migrations.apply_migrations(database.engine)
    early = (last + 1, "merged later", lambda conn: ran.append("early"))
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:-1] + (early, late))
    assert migrations.apply_migrations(database.engine) == last + 2
    assert ran == ["late", "early"]


def test_failing_migration_rolls_back_entirely(database, monkeypatch) -> None:
    def good(conn):
        conn.execute(sa.text("CREATE TABLE extra_good (id INTEGER PRIMARY KEY)"))

    def bad(conn):
        raise RuntimeError("boom")

    last = migrations.MIGRATIONS[-1][0]
    extra = ((last + 1, "good", good), (last + 2, "bad", bad))
    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS + extra)
    with pytest.raises(RuntimeError):
        migrations.apply_migrations(database.engine)
    with database.engine.connect() as conn:
        assert migrations.current_version(conn) == last
        assert not sa.inspect(conn).has_table("extra_good")


def test_step_3_on_a_legacy_sqlite_database(tmp_path) -> None:
    """Scans without AUTOINCREMENT and grants with text scan ids, as before step 3."""
    engine = make_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    migrations.apply_migrations(engine)
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        run("PRAGMA defer_foreign_keys=ON")
        sql = run("SELECT sql FROM sqlite_master WHERE name='scans'").scalar_one()
        run("DROP TABLE share_grant_scans")
        run("DROP TABLE scans")
        run(sql.replace("AUTOINCREMENT", ""))
        run("CREATE INDEX ix_scans_owner_id ON scans (owner_id)")
        run("ALTER TABLE share_grants DROP COLUMN all_scans")
        run("ALTER TABLE share_grants DROP COLUMN allow_adding_films")  # step 20
        run("ALTER TABLE share_grants ADD COLUMN scan_ids TEXT")
        run("DELETE FROM schema_version WHERE version >= 3")
        run(
            "INSERT INTO users (id, username, role, is_active, must_change_password, created_at)"
            " VALUES (1, 'p', 'patient', 1, 0, '2024-01-01'), (2, 'c', 'clinician', 1, 0, "
            "'2024-01-01')"
        )
        run(
            "INSERT INTO scans (id, owner_id, key_version, blob_name, created_at) "
            "VALUES (1, 1, 1, 'a', '2024-01-01'), (2, 1, 1, 'b', '2024-01-01')"
        )
        run(
            "INSERT INTO share_grants (id, patient_id, clinician_id, created_at, expires_at, "
            "scan_ids) VALUES (1, 1, 2, '2024-01-01', '2099-01-01', '2,7'), "
            "(2, 1, 2, '2024-01-01', '2099-01-01', NULL)"
        )
    assert migrations.apply_migrations(engine) == migrations.MIGRATIONS[-1][0]
    with engine.begin() as conn:
        run = conn.exec_driver_sql
        assert "AUTOINCREMENT" in run("SELECT sql FROM sqlite_master WHERE name='scans'").scalar()
        assert run("SELECT grant_id, scan_id FROM share_grant_scans").all() == [(1, 2)]
        assert run("SELECT id, all_scans FROM share_grants ORDER BY id").all() == [(1, 0), (2, 1)]
        assert run("SELECT allow_adding_films FROM share_grants").scalars().all() == [0, 0]
        run("DELETE FROM scans WHERE id = 2")
        run(
            "INSERT INTO scans (owner_id, key_version, blob_name, created_at) "
            "VALUES (1, 1, 'c', '2024-01-01')"
        )
        assert run("SELECT id FROM scans ORDER BY id").scalars().all() == [1, 3]
        assert run("SELECT * FROM share_grant_scans").all() == []
    engine.dispose()


@contextmanager
def _migrated(tmp_path) -> Iterator[Connection]:
    """A fully migrated SQLite database, open in a transaction: a test puts back the form a
    table had before a step and runs that step (:func:`_step`) again."""
    engine = make_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    migrations.apply_migrations(engine)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def _step(number: int) -> Callable[[Connection], None]:
    return next(fn for step, _, fn in migrations.MIGRATIONS if step == number)


def test_step_5_adds_sessions_and_drops_account_wide_lockouts(tmp_path) -> None:
    """Before step 5 a lockout row per account name let anyone lock an owner out."""
    with _migrated(tmp_path) as conn:
        run = conn.exec_driver_sql
        run("DROP TABLE user_sessions")
        run(
            "INSERT INTO login_throttle (key, failures, locked_until) VALUES "
            "('user:alice', 9, '2099-01-01'), ('client:203.0.113.9', 4, NULL)"
        )
        _step(5)(conn)
        assert sa.inspect(conn).has_table("user_sessions")
        assert run("SELECT key FROM login_throttle").scalars().all() == ["client:203.0.113.9"]


def test_step_11_counts_refusals_on_existing_login_delays(tmp_path) -> None:
    with _migrated(tmp_path) as conn:
        run = conn.exec_driver_sql
        run("ALTER TABLE login_throttle DROP COLUMN refused")
        run("INSERT INTO login_throttle (key, failures) VALUES ('pair:alice|c1', 4)")
        _step(11)(conn)
        _step(11)(conn)  # a second run changes nothing
        assert run("SELECT failures, refused FROM login_throttle").all() == [(4, 0)]


def test_step_12_leaves_blob_sizes_to_be_measured_later(tmp_path) -> None:
    with _migrated(tmp_path) as conn:
        for table in ("scans", "scan_originals"):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN blob_bytes")
        _step(12)(conn)
        _step(12)(conn)  # a second run changes nothing
        for table in ("scans", "scan_originals"):
            (column,) = [
                c for c in sa.inspect(conn).get_columns(table) if c["name"] == "blob_bytes"
            ]
            assert column["nullable"], "older rows have no size until the quota measures them"


def test_step_16_adds_the_version_tree_and_marks_the_old_root(tmp_path) -> None:
    """The root signed before step 16 is one MAC over every head; the tree replaces it at the
    first sealed access (tests/storage/test_versions.py), since only that holds the key."""
    with _migrated(tmp_path) as conn:
        run = conn.exec_driver_sql
        run("DROP TABLE seal_nodes")
        run("ALTER TABLE seal_root DROP COLUMN scheme")
        run("INSERT INTO seal_root (id, mac) VALUES (1, 'step 7 mac')")
        _step(16)(conn)
        _step(16)(conn)  # a second run changes nothing
        assert sa.inspect(conn).has_table("seal_nodes")
        assert run("SELECT mac, scheme FROM seal_root").all() == [("step 7 mac", 1)]


def test_step_19_adds_the_query_indexes_and_runs_again_harmlessly(database) -> None:
    """On a database from before step 19 (either backend) the indexes the audit queries need
    are created; a second run, and a fresh database that already has them, change nothing."""

    def audit_indexes() -> set[str]:
        with database.engine.connect() as conn:
            return {index["name"] for index in sa.inspect(conn).get_indexes("audit_events")}

    new = set(schema.STEP_19_INDEXES)
    assert new <= audit_indexes()  # a fresh database has them from step 1
    with database.engine.begin() as conn:
        for name in sorted(new):
            conn.exec_driver_sql(f"DROP INDEX {name}")
    assert not new & audit_indexes()
    for _ in range(2):
        with database.engine.begin() as conn:
            _step(19)(conn)
    assert new <= audit_indexes()
