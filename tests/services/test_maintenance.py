"""The image quarantine's operator commands (services.maintenance), on both backends."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from services import maintenance
from storage import schema
from storage.bootstrap import open_database, sweep_orphans
from storage.scans import delete_scan, load_scan
from tests.storage._factories import save_sample_scan

# These tests age and plant files in the image folder; the quarantine commands on a bucket
# are covered by tests/storage/test_blob_stores.py.
pytestmark = pytest.mark.local_blobs


def _age_all(root, seconds: float) -> None:
    then = time.time() - seconds
    for path in root.rglob("*"):
        os.utime(path, (then, then))


def _actions(database, action: str) -> list[schema.AuditEvent]:
    with database.transaction() as session:
        query = select(schema.AuditEvent).where(schema.AuditEvent.action == action)
        return list(session.exec(query).all())


def _orphan_alice_scan(database, make_user):
    """Alice's scan whose row was lost (e.g. a database restored from before it)."""
    alice = make_user("alice")
    kept = save_sample_scan(database, alice, seed=1)
    with database.engine.begin() as conn:
        heads = conn.exec_driver_sql("SELECT user_id, counter, digest FROM seal_heads").all()
        root = conn.exec_driver_sql("SELECT mac FROM seal_root").scalar_one()
    lost = save_sample_scan(database, alice, seed=2)
    with database.transaction() as session:
        row = session.get(schema.Scan, lost)
        blob_name = row.blob_name
    # The row vanishes but the image stays, as when the row's database is rolled back (with
    # the record versions of that moment: storage.versions).
    with database.engine.begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM results WHERE scan_id = {lost}")
        conn.exec_driver_sql(f"DELETE FROM scans WHERE id = {lost}")
        conn.exec_driver_sql("DELETE FROM seal_heads")
        for user_id, counter, digest in heads:
            conn.exec_driver_sql(
                f"INSERT INTO seal_heads VALUES ({user_id}, {counter}, '{digest}')"
            )
        conn.exec_driver_sql(f"UPDATE seal_root SET mac = '{root}'")
    _age_all(database.blobs.root, 2 * 24 * 3600)
    return alice, kept, blob_name


def test_sweep_then_list_restore_and_purge(database, make_user) -> None:
    alice, kept, orphan = _orphan_alice_scan(database, make_user)
    [moved] = sweep_orphans(database)
    assert moved.name == orphan
    assert [e.name for e in maintenance.list_quarantine(database)] == [orphan]

    restored = maintenance.restore_quarantine(database, moved.batch, operator="(test)")
    assert [e.name for e in restored] == [orphan]
    assert (database.blobs.root / orphan).is_file()
    assert maintenance.list_quarantine(database) == []
    assert len(_actions(database, "restore_quarantine")) == 1

    [again] = sweep_orphans(database)
    assert maintenance.purge_quarantine(database, 7, operator="(test)") == []
    assert (database.blobs.root / again.key).is_file()
    later = datetime.now(UTC) + timedelta(days=8)
    purged = maintenance.purge_quarantine(database, 7, operator="(test)", now=later)
    assert [e.name for e in purged] == [orphan]
    assert not (database.blobs.root / again.key).exists()
    [event] = _actions(database, "purge_quarantine")
    assert event.actor_username == "(test)" and '"files":1' in event.details
    assert load_scan(database, alice, kept).filename == "chest_front.png"


def test_restore_refuses_unknown_names_and_clashes(database, make_user) -> None:
    _, _, orphan = _orphan_alice_scan(database, make_user)
    [moved] = sweep_orphans(database)
    with pytest.raises(maintenance.QuarantineError):
        maintenance.restore_quarantine(database, "0" * 32, operator="(test)")
    (database.blobs.root / orphan).write_bytes(b"newer")
    with pytest.raises(maintenance.QuarantineError):
        maintenance.restore_quarantine(database, None, operator="(test)")
    assert (database.blobs.root / moved.key).is_file()
    assert (database.blobs.root / orphan).read_bytes() == b"newer"


def test_quarantine_orphans_lets_a_rightly_empty_database_start(
    settings, database, make_user
) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    blob = next(database.blobs.live())
    # A crash between deleting the last scan's row and its image leaves exactly this.
    blob_bytes = (database.blobs.root / blob.key).read_bytes()
    delete_scan(database, alice, scan_id)
    (database.blobs.root / blob.key).write_bytes(blob_bytes)
    database.close()
    maintained = open_database(settings, maintenance=True)
    try:
        moved = maintenance.quarantine_orphans(maintained, operator="(test)", min_age=timedelta(0))
        assert [e.name for e in moved] == [blob.name]
        assert len(_actions(maintained, "quarantine_orphans")) == 1
    finally:
        maintained.close()
    open_database(settings).close()
