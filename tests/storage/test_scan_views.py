"""The view (projection) stored with each scan, and its audited correction, on both backends."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from core.views import View
from storage import schema, sharing
from storage.policy import AccessDenied
from storage.scans import (
    RecordNotFound,
    list_scans,
    load_scan,
    open_scan_payload,
    save_scan,
    update_scan_view,
)
from tests.storage._factories import sample_pixels, save_sample_scan


def _events(database, action: str) -> list[schema.AuditEvent]:
    with database.transaction() as session:
        return list(
            session.exec(select(schema.AuditEvent).where(schema.AuditEvent.action == action))
        )


def test_the_view_is_stored_sealed_and_read_back(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_scan(
        database,
        alice,
        pixels=sample_pixels(1),
        metadata={},
        enhancement={},
        scan_date=date(2026, 1, 5),
        filename="side.png",
        view=View.LATERAL,
    )
    [summary] = list_scans(database, alice, alice.user_id)
    assert summary.view is View.LATERAL
    assert load_scan(database, alice, scan_id).view is View.LATERAL
    with database.transaction() as session:
        row = session.get_one(schema.Scan, scan_id)
        # Sealed with the date and file name, never a readable column.
        assert b"lateral" not in bytes(row.payload)
        sealer = database.keyring.sealer(session, alice.user_id)
        assert open_scan_payload(sealer, row)["view"] == "lateral"


def test_a_scan_stored_before_views_reads_as_unknown(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    with database.transaction() as session:
        # Rewrite the payload as an older app version stored it: without a view.
        row = session.get_one(schema.Scan, scan_id)
        sealer = database.keyring.sealer(session, alice.user_id)
        payload = open_scan_payload(sealer, row)
        del payload["view"]
        row.payload = sealer.seal_json("scans", scan_id, row.key_version, payload)
        session.add(row)
    [summary] = list_scans(database, alice, alice.user_id)
    assert summary.view is View.UNKNOWN


def test_the_owner_corrects_a_view_and_the_change_is_audited(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    before = len(_events(database, "update_scan_view"))

    update_scan_view(database, alice, scan_id, View.AP_SUPINE)

    [summary] = list_scans(database, alice, alice.user_id)
    assert summary.view is View.AP_SUPINE
    assert len(summary.results) == 1  # the stored result is kept
    [event] = _events(database, "update_scan_view")[before:]
    assert event.actor_id == alice.user_id and event.record_id == scan_id


def test_nobody_else_may_change_a_view(database, make_user) -> None:
    alice = make_user("alice")
    mallory = make_user("mallory")
    dr_bob = make_user("dr_bob", role="clinician")
    scan_id = save_sample_scan(database, alice)
    sharing.grant_access(database, alice, "dr_bob")

    # The attacks: another patient, and a clinician who may read the scan, relabel it.
    for attacker in (mallory, dr_bob):
        with pytest.raises(AccessDenied):
            update_scan_view(database, attacker, scan_id, View.LATERAL)
    with pytest.raises(RecordNotFound):
        update_scan_view(database, alice, scan_id + 999, View.PA)

    assert list_scans(database, alice, alice.user_id)[0].view is View.UNKNOWN
    assert _events(database, "update_scan_view") == []
