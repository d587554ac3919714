"""Rollback attacks on sealed rows (storage.versions), by someone who can write the database only.

Each test saves a value, keeps a raw copy of what the database held, lets the app change it,
and then puts the old copy back with SQL, as such an attacker would: the read is refused with
an integrity error and the refusal is written to the audit trail.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from storage import schema
from storage.actor import Actor
from storage.bootstrap import ensure_version_root
from storage.crypto import DecryptionError
from storage.db import Database
from storage.evidence import IntegrityFailure
from storage.scans import add_results, list_scans, load_scan, update_scan_date
from tests.storage._factories import sample_result, save_sample_scan


def _rows(db: Database, sql: str, **params: Any) -> list[sa.Row]:
    with db.engine.begin() as conn:
        return list(conn.execute(sa.text(sql), params))


def _run(db: Database, sql: str, **params: Any) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def _snapshot(db: Database, scan_id: int) -> dict[str, Any]:
    """Everything an attacker would copy to put the scan's payload back later."""
    ((payload,),) = _rows(db, "SELECT payload FROM scans WHERE id = :id", id=scan_id)
    ((version,),) = _rows(
        db,
        "SELECT row_version FROM seal_versions WHERE table_name = 'scans' AND row_id = :id",
        id=scan_id,
    )
    heads = _rows(db, "SELECT user_id, counter, digest FROM seal_heads")
    ((root,),) = _rows(db, "SELECT mac FROM seal_root")
    return {"payload": payload, "version": version, "heads": heads, "root": root}


def _put_back(db: Database, scan_id: int, old: dict[str, Any], *parts: str) -> None:
    if "payload" in parts:
        _run(db, "UPDATE scans SET payload = :p WHERE id = :id", p=old["payload"], id=scan_id)
    if "version" in parts:
        _run(
            db,
            "UPDATE seal_versions SET row_version = :v WHERE table_name = 'scans' AND row_id = :id",
            v=old["version"],
            id=scan_id,
        )
    if "heads" in parts:
        _run(db, "DELETE FROM seal_heads")
        for user_id, counter, digest in old["heads"]:
            _run(
                db,
                "INSERT INTO seal_heads (user_id, counter, digest) VALUES (:u, :c, :d)",
                u=user_id,
                c=counter,
                d=digest,
            )
    if "root" in parts:
        _run(db, "UPDATE seal_root SET mac = :m", m=old["root"])


def _failures(db: Database, patient_id: int) -> list[schema.AuditEvent]:
    with db.transaction() as session:
        return list(
            session.exec(
                select(schema.AuditEvent)
                .where(schema.AuditEvent.action == "integrity_failure")
                .where(schema.AuditEvent.patient_id == patient_id)
            ).all()
        )


@pytest.fixture
def alice(make_user) -> Actor:
    return make_user("alice")


def _edited_scan(database: Database, alice: Actor) -> tuple[int, dict[str, Any]]:
    scan_id = save_sample_scan(database, alice, scan_date=date(2024, 3, 14))
    before = _snapshot(database, scan_id)
    update_scan_date(database, alice, scan_id, date(2024, 5, 2))
    return scan_id, before


@pytest.mark.parametrize(
    "parts",
    [("payload",), ("payload", "version"), ("payload", "version", "heads")],
    ids=["ciphertext only", "with its version", "with its version and the owner's head"],
)
def test_a_scan_date_put_back_to_before_an_edit_is_refused_and_recorded(
    database: Database, alice: Actor, parts: tuple[str, ...]
) -> None:
    scan_id, before = _edited_scan(database, alice)
    _put_back(database, scan_id, before, *parts)
    for read in (
        lambda: list_scans(database, alice, alice.user_id),
        lambda: load_scan(database, alice, scan_id),
    ):
        with pytest.raises(DecryptionError) as refused:
            read()
        assert isinstance(refused.value, IntegrityFailure)
        assert "2024-03-14" not in str(refused.value)
    assert _failures(database, alice.user_id)


def test_putting_back_every_head_and_the_root_is_caught_where_anything_changed_since(
    database: Database, alice: Actor, make_user
) -> None:
    """The widest rollback short of a restored backup: rows, all heads and the root.

    It is consistent for Alice, whose edit was undone, but not for Bob, who saved a scan
    since: his next read is refused and recorded, so the rollback does not go unseen. (If
    nothing at all changed since, nothing can tell; see SECURITY.md.)
    """
    scan_id, before = _edited_scan(database, alice)
    bob = make_user("bob")
    save_sample_scan(database, bob, seed=3)
    _put_back(database, scan_id, before, "payload", "version", "heads", "root")
    with pytest.raises(IntegrityFailure):
        list_scans(database, bob, bob.user_id)
    assert _failures(database, bob.user_id)
    # And the rollback cannot be laundered by the next write of anyone's records.
    with pytest.raises(IntegrityFailure):
        save_sample_scan(database, bob, seed=4)


def test_a_result_removed_to_hide_a_rescoring_is_refused(database: Database, alice: Actor) -> None:
    scan_id = save_sample_scan(database, alice)
    (newer,) = add_results(database, alice, [(scan_id, sample_result(pneumonia=0.1))])
    _run(database, "DELETE FROM results WHERE id = :id", id=newer)
    with pytest.raises(IntegrityFailure):
        load_scan(database, alice, scan_id)
    assert _failures(database, alice.user_id)


def test_a_deleted_root_is_not_made_again_at_the_next_start(
    database: Database, alice: Actor
) -> None:
    save_sample_scan(database, alice)
    _run(database, "DELETE FROM seal_root")
    ensure_version_root(database)
    with pytest.raises(IntegrityFailure):
        list_scans(database, alice, alice.user_id)


def test_edits_and_deletions_by_the_owner_keep_every_record_readable(
    database: Database, alice: Actor
) -> None:
    from storage.scans import delete_scan

    kept = save_sample_scan(database, alice, seed=1)
    gone = save_sample_scan(database, alice, seed=2)
    update_scan_date(database, alice, kept, date(2023, 1, 9))
    add_results(database, alice, [(kept, sample_result(pneumonia=0.3))])
    delete_scan(database, alice, gone)
    (summary,) = list_scans(database, alice, alice.user_id)
    assert summary.scan_date == date(2023, 1, 9) and len(summary.results) == 2
    assert not _failures(database, alice.user_id)
    # The deleted scan's version row went with it.
    assert not _rows(
        database, "SELECT 1 FROM seal_versions WHERE table_name = 'scans' AND row_id = :id", id=gone
    )
