"""Tests for storage.db: connection settings of the engine, and contention that is no outage."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from core.errors import UserError
from core.settings import load_settings
from storage import audit
from storage.bootstrap import open_database
from storage.db import BUSY_ATTEMPTS, DatabaseBusy, DatabaseSlow, make_engine, retry_when_busy
from storage.scans import list_scans, load_scan
from tests.storage.conftest import empty_backend, env_for

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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


@pytest.mark.slow
def test_two_processes_on_one_patient_meet_contention_without_an_outage(
    settings_env, database, make_user, tmp_path
) -> None:
    """Issue 22: 4 of ~200 such operations on PostgreSQL once failed with "cannot be reached"
    (deadlocks reported as an outage). Now contention is retried: no failure, nothing lost.
    150 operations: each key rotation reseals every scan saved so far, so the cost grows with
    the square of the count."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's writers queue for its lock; its busy error is tested below")
    patient = make_user("pat")
    make_user("doc", "clinician")
    env = {**settings_env, "UPLOADS_PER_HOUR": "1000"}
    outs = [tmp_path / f"worker-{worker}.json" for worker in range(2)]
    # Separate interpreters, as app replicas are; multiprocessing's spawn would re-import
    # whatever script an earlier in-process page test left as __main__.
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.storage._contender", json.dumps(env)]
            + [str(patient.user_id), patient.username, str(worker), "75", str(out)],
            cwd=PROJECT_ROOT,
        )
        for worker, out in enumerate(outs)
    ]
    assert [process.wait(900) for process in workers] == [0, 0]
    results = [json.loads(out.read_text()) for out in outs]

    assert [failures for _, failures in results] == [[], []]
    saved = sorted(scan_id for ids, _ in results for scan_id in ids)
    assert len(saved) == 50  # 25 + 25 saves of the 150 operations
    assert sorted(summary.id for summary in list_scans(database, patient, patient.user_id)) == saved
    for scan_id in saved:
        assert load_scan(database, patient, scan_id).pixels.shape == (32, 32)
    assert audit.verify_chain(database).ok


def test_contention_is_retried_then_reported_as_busy_never_as_unreachable(database) -> None:
    """A deadlock or serialization failure (PostgreSQL) and a locked file (SQLite) roll the
    transaction back: the unit of work runs again, and only if it keeps meeting contention is
    the user told the database is busy."""
    runs = []

    @retry_when_busy
    def always_contended() -> None:
        runs.append(1)
        with database.transaction():
            raise _contention(database)

    with pytest.raises(DatabaseBusy) as told:
        always_contended()
    assert len(runs) == BUSY_ATTEMPTS
    assert isinstance(told.value, UserError) and "busy" in str(told.value)
    assert "cannot be reached" not in str(told.value)

    @retry_when_busy
    def contended_once() -> str:
        runs.append(1)
        if len(runs) == BUSY_ATTEMPTS + 1:
            with database.transaction():
                raise _contention(database)
        return "done"

    assert contended_once() == "done" and len(runs) == BUSY_ATTEMPTS + 2


def test_a_real_deadlock_is_reported_as_busy(make_user, database) -> None:
    """Two transactions locking two rows in opposite orders: PostgreSQL aborts one."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time")
    ids = [make_user(name).user_id for name in ("ann", "ben")]
    both_hold_one = threading.Barrier(2)
    outcomes: list[BaseException | None] = []

    def lock_in_order(first: int, second: int) -> None:
        try:
            with database.transaction() as session:
                session.execute(_LOCK_USER, {"id": first})
                both_hold_one.wait(10)
                session.execute(_LOCK_USER, {"id": second})
            outcomes.append(None)
        except BaseException as exc:  # the deadlock victim, inspected below
            outcomes.append(exc)

    threads = [threading.Thread(target=lock_in_order, args=order) for order in (ids, ids[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["DatabaseBusy", "NoneType"]


_LOCK_USER = sa.text("SELECT id FROM users WHERE id = :id FOR UPDATE")


class _Orig(Exception):
    """A driver error as each backend reports contention."""

    def __init__(self, sqlstate: str | None, sqlite_errorcode: int | None) -> None:
        super().__init__("contention")
        self.sqlstate = sqlstate
        self.sqlite_errorcode = sqlite_errorcode


def _contention(database) -> OperationalError:
    if database.engine.dialect.name == "postgresql":
        orig = _Orig("40P01", None)
    else:
        orig = _Orig(None, sqlite3.SQLITE_BUSY)
    return OperationalError("COMMIT", {}, orig)


def test_a_statement_past_the_timeout_is_cancelled_and_told_as_a_sentence(tmp_path) -> None:
    """PostgreSQL: DB_STATEMENT_TIMEOUT_MS and DB_POOL_SIZE reach the engine (beside the
    search path the URL's options already carry), and a cancelled statement is one sentence
    for the user, not "cannot be reached"."""
    with empty_backend("postgres", tmp_path) as url:
        env = {**env_for(url, tmp_path / "data"), "DB_STATEMENT_TIMEOUT_MS": "300"}
        db = open_database(load_settings({**env, "DB_POOL_SIZE": "2"}))
        try:
            assert db.engine.pool.size() == 2  # type: ignore[attr-defined]
            with db.transaction() as session:
                assert session.execute(sa.text("SHOW statement_timeout")).scalar() == "300ms"
                path = session.execute(sa.text("SHOW search_path")).scalar()
                assert path == url.rsplit("%3D", 1)[1]
            with pytest.raises(DatabaseSlow) as raised, db.transaction() as session:
                session.execute(sa.text("SELECT pg_sleep(2)"))
            assert isinstance(raised.value, UserError)
            assert str(raised.value) == (
                "The database took too long to answer, so nothing was changed; "
                "please try again in a minute."
            )
            with db.transaction() as session:  # the connection is usable again
                assert session.execute(sa.text("SELECT 1")).scalar() == 1
        finally:
            db.close()
