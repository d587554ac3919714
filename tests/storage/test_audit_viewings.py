"""Reads audited once per viewing (a page visit or a teleconsult), not at every page rerun."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from storage import accounts, audit, profile, schema, sharing
from storage.access_log import access_log
from storage.actor import Actor
from storage.db import Database
from storage.notes import list_notes
from storage.policy import AccessDenied
from storage.scans import list_scans, load_scan
from tests.storage._factories import save_sample_scan


def _reads(db: Database, action: str, patient: Actor) -> list[dict[str, object]]:
    """The details of each ``action`` event about ``patient``, oldest first."""
    with db.transaction() as session:
        rows = session.exec(
            select(schema.AuditEvent.details)
            .where(schema.AuditEvent.action == action)
            .where(schema.AuditEvent.patient_id == patient.user_id)
            .order_by(col(schema.AuditEvent.seq))
        ).all()
    return [json.loads(row) for row in rows]


def _clinician(db: Database, name: str = "doc") -> Actor:
    return accounts.operator_create_user(db, name, "a long enough pass", "clinician")


def test_a_read_without_a_viewing_is_always_audited(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    for _ in range(3):
        list_scans(database, alice, alice.user_id)
        profile.get_birth_year(database, alice, alice.user_id)
        load_scan(database, alice, scan_id)
        list_notes(database, alice, scan_id)
    for action in ("list_scans", "read_birth_year", "read_scan", "read_notes"):
        assert len(_reads(database, action, alice)) == 3, action
        assert all("viewing" not in details for details in _reads(database, action, alice))


def test_reruns_of_a_viewing_are_audited_once_per_patient_and_record(database, make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    first = save_sample_scan(database, alice, seed=1)
    second = save_sample_scan(database, alice, seed=2)
    save_sample_scan(database, bob)
    doc = _clinician(database)
    sharing.grant_access(database, alice, "doc")
    sharing.grant_access(database, bob, "doc")
    for _ in range(5):  # five reruns of one page visit
        assert len(list_scans(database, doc, alice.user_id, viewing="visit-1")) == 2
        profile.get_birth_year(database, doc, alice.user_id, viewing="visit-1")
        list_scans(database, doc, bob.user_id, viewing="visit-1")
        load_scan(database, doc, first, viewing="visit-1")
    load_scan(database, doc, second, viewing="visit-1")  # another film: its own entry
    assert [d["viewing"] for d in _reads(database, "list_scans", alice)] == ["visit-1"]
    assert len(_reads(database, "read_birth_year", alice)) == 1
    assert len(_reads(database, "list_scans", bob)) == 1
    assert len(_reads(database, "read_scan", alice)) == 2
    # A new visit is audited again; the patient's access log shows the reads.
    list_scans(database, doc, alice.user_id, viewing="visit-2")
    assert [d["viewing"] for d in _reads(database, "list_scans", alice)] == [
        "visit-1",
        "visit-2",
    ]
    seen = [(e.actor_username, e.action) for e in access_log(database, alice, alice.user_id)]
    assert seen.count(("doc", "list_scans")) == 2 and ("doc", "read_scan") in seen
    assert audit.verify_chain(database).ok


def test_the_policy_is_still_checked_at_every_rerun(database, make_user) -> None:
    alice = make_user("alice")
    save_sample_scan(database, alice)
    doc = _clinician(database)
    grant = sharing.grant_access(database, alice, "doc")
    list_scans(database, doc, alice.user_id, viewing="visit")
    sharing.revoke_access(database, alice, grant)
    with pytest.raises(AccessDenied):
        list_scans(database, doc, alice.user_id, viewing="visit")
    # Another user rerunning a clinician's viewing id gets their own first entry.
    list_scans(database, alice, alice.user_id, viewing="visit")
    actors = [d.get("viewing") for d in _reads(database, "list_scans", alice)]
    assert actors == ["visit", "visit"]


def test_a_viewing_left_open_is_audited_again_after_an_hour(database, make_user) -> None:
    alice = make_user("alice")
    list_scans(database, alice, alice.user_id, viewing="old")
    list_scans(database, alice, alice.user_id, viewing="older")
    table = schema.table_of(schema.AuditViewing)
    with database.transaction() as session:
        session.connection().execute(
            update(table).values(
                first_at=schema.utcnow() - timedelta(hours=audit.VIEWING_HOURS, minutes=1)
            )
        )
    list_scans(database, alice, alice.user_id, viewing="old")
    list_scans(database, alice, alice.user_id, viewing="old")
    assert [d["viewing"] for d in _reads(database, "list_scans", alice)] == [
        "old",
        "older",
        "old",
    ]
    # The viewings that were over are gone; the one renewed is kept.
    with database.transaction() as session:
        left = session.connection().execute(select(table.c.viewing)).scalars().all()
    assert left == ["old"]


def test_concurrent_reruns_of_one_viewing_append_one_event(database, make_user) -> None:
    alice = make_user("alice")
    save_sample_scan(database, alice)
    errors: list[BaseException] = []

    def rerun() -> None:
        try:
            list_scans(database, alice, alice.user_id, viewing="same")
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=rerun) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(_reads(database, "list_scans", alice)) == 1
    assert audit.verify_chain(database).ok


def test_a_viewing_id_has_one_to_64_characters(database, make_user) -> None:
    alice = make_user("alice")
    for bad in ("", "x" * 65):
        with pytest.raises(ValueError):
            list_scans(database, alice, alice.user_id, viewing=bad)
    assert not _reads(database, "list_scans", alice)
