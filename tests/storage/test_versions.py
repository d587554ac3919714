"""Rollback attacks on sealed rows (storage.versions), by someone who can write the database only.

Each test saves a value, keeps a raw copy of what the database held, lets the app change it,
and then puts the old copy back with SQL, as such an attacker would: the read is refused with
an integrity error and the refusal is written to the audit trail.
"""

from __future__ import annotations

import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillWaiting
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from storage import schema, versions
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
    nodes = _rows(db, "SELECT level, position, mac FROM seal_nodes")
    ((root,),) = _rows(db, "SELECT mac FROM seal_root")
    return {"payload": payload, "version": version, "heads": heads, "nodes": nodes, "root": root}


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
    if "nodes" in parts:
        _run(db, "DELETE FROM seal_nodes")
        for level, position, mac in old["nodes"]:
            _run(
                db,
                "INSERT INTO seal_nodes (level, position, mac) VALUES (:l, :p, :m)",
                l=level,
                p=position,
                m=mac,
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
    """The widest rollback short of a restored backup: rows, all heads, the tree and the root.

    It is consistent for Alice, whose edit was undone, but not for Bob, who saved a scan
    since: his next read is refused and recorded, so the rollback does not go unseen. (If
    nothing at all changed since, nothing can tell; see SECURITY.md.)
    """
    scan_id, before = _edited_scan(database, alice)
    bob = make_user("bob")
    save_sample_scan(database, bob, seed=3)
    _put_back(database, scan_id, before, "payload", "version", "heads", "nodes", "root")
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


def _step_7_root(db: Database) -> None:
    """Sign the root as migration step 7 did (one MAC over every head) and drop the tree."""
    with db.transaction() as session:
        key = db.keyring.subkey(session, versions.ROOT_PURPOSE)
    heads = _rows(db, "SELECT user_id, counter, digest FROM seal_heads ORDER BY user_id")
    body = "".join(f"{user_id}|{counter}|{digest}\n" for user_id, counter, digest in heads)
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    _run(db, "DELETE FROM seal_nodes")
    _run(db, "UPDATE seal_root SET mac = :m, scheme = 1", m=mac)


def test_a_step_7_root_is_checked_once_then_replaced_by_the_tree(
    database: Database, alice: Actor
) -> None:
    scan_id = save_sample_scan(database, alice, scan_date=date(2024, 3, 14))
    _step_7_root(database)
    (summary,) = list_scans(database, alice, alice.user_id)
    assert summary.scan_date == date(2024, 3, 14)
    assert _rows(database, "SELECT scheme FROM seal_root") == [(versions.TREE,)]
    assert _rows(database, "SELECT COUNT(*) FROM seal_nodes") == [(versions.TOP,)]
    update_scan_date(database, alice, scan_id, date(2024, 5, 2))
    assert load_scan(database, alice, scan_id).scan_date == date(2024, 5, 2)


def test_a_step_7_root_that_does_not_verify_is_refused_not_replaced(
    database: Database, alice: Actor
) -> None:
    scan_id, before = _edited_scan(database, alice)
    _step_7_root(database)
    _put_back(database, scan_id, before, "payload", "version")
    _run(database, "UPDATE seal_heads SET counter = :c, digest = :d", **_head_of(before, alice))
    with pytest.raises(IntegrityFailure):
        list_scans(database, alice, alice.user_id)
    assert _rows(database, "SELECT scheme FROM seal_root") == [(1,)]


def _head_of(snapshot: dict[str, Any], owner: Actor) -> dict[str, Any]:
    ((counter, digest),) = [(c, d) for u, c, d in snapshot["heads"] if u == owner.user_id]
    return {"c": counter, "d": digest}


def test_a_check_reads_the_owners_block_of_heads_not_every_head(
    database: Database, alice: Actor
) -> None:
    """An owner's check signs up from its own block of 16 heads and the nodes above it.

    So heads far from Alice's (here 50,000 owners without records, whose heads a check
    reading every head would also trip over) take no part in opening her records; each stays
    bound by the root through its own path, and a check of that owner refuses it altered.
    """
    save_sample_scan(database, alice)
    far = range(1_000, 51_000)
    with database.transaction() as session:
        session.execute(
            sa.insert(schema.table_of(schema.SealHead)),
            [{"user_id": owner, "counter": 1, "digest": versions.EMPTY.digest} for owner in far],
        )
        versions.sign_heads(session, database.keyring.subkey(session, versions.ROOT_PURPOSE))
    with database.transaction() as session:
        versions.checked(session, database.keyring.subkey(session, versions.ROOT_PURPOSE), far[-1])
    _run(database, "UPDATE seal_heads SET counter = 2 WHERE user_id = :u", u=far[-1])
    assert len(list_scans(database, alice, alice.user_id)) == 1
    with database.transaction() as session, pytest.raises(IntegrityFailure):
        versions.checked(session, database.keyring.subkey(session, versions.ROOT_PURPOSE), far[-1])


def test_readers_share_a_patient_and_wait_only_for_that_patients_writer(
    database: Database, alice: Actor, make_user
) -> None:
    """No lock is global: Bob's upload in progress holds Bob's records only, exclusively,
    and readers of one patient hold that patient shared (PostgreSQL; SQLite runs one write
    transaction at a time by design)."""
    if database.engine.dialect.name == "sqlite":
        pytest.skip("SQLite runs one write transaction at a time")
    bob = make_user("bob")
    save_sample_scan(database, alice)
    save_sample_scan(database, bob, seed=2)
    with ThreadPoolExecutor(2) as pool:
        with database.transaction() as session:
            database.keyring.sealer(session, alice.user_id)
            database.keyring.sealer(session, bob.user_id, for_update=True)
            assert len(pool.submit(list_scans, database, alice, alice.user_id).result(10)) == 1
            waiting = pool.submit(list_scans, database, bob, bob.user_id)
            with pytest.raises(StillWaiting):
                waiting.result(1)
        assert len(waiting.result(10)) == 1
