"""Teleconsult sessions (services.teleconsult): audited start and end, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from services.teleconsult import end_teleconsult, start_teleconsult
from storage import schema
from storage.policy import AccessDenied
from storage.sharing import SharedPatient, grant_access, revoke_access, shared_patients


def _events(database, action: str) -> list[schema.AuditEvent]:
    with database.transaction() as session:
        return list(
            session.exec(
                select(schema.AuditEvent)
                .where(schema.AuditEvent.action == action)
                .order_by(schema.AuditEvent.seq)
            ).all()
        )


def test_a_session_is_audited_from_start_to_end(database, make_user) -> None:
    alice = make_user("alice")
    dr_bob = make_user("dr_bob", role="clinician")
    grant_access(database, alice, "dr_bob", hours=1)
    (patient,) = shared_patients(database, dr_bob)

    session = start_teleconsult(database, dr_bob, patient)
    minutes = end_teleconsult(database, dr_bob, session)

    assert (session.patient_id, session.username) == (alice.user_id, "alice")
    assert 0 <= minutes < 5
    (start,) = _events(database, "teleconsult_start")
    (end,) = _events(database, "teleconsult_end")
    assert start.actor_id == end.actor_id == dr_bob.user_id
    assert start.patient_id == end.patient_id == alice.user_id
    assert start.seq < end.seq


def test_no_session_without_access_but_an_open_one_still_ends(database, make_user) -> None:
    alice = make_user("alice")
    dr_bob = make_user("dr_bob", role="clinician")
    stranger = SharedPatient(alice.user_id, "alice", datetime.now(UTC))
    with pytest.raises(AccessDenied):
        start_teleconsult(database, dr_bob, stranger)
    assert _events(database, "teleconsult_start") == []

    grant_id = grant_access(database, alice, "dr_bob", hours=1)
    session = start_teleconsult(database, dr_bob, shared_patients(database, dr_bob)[0])
    revoke_access(database, alice, grant_id)
    end_teleconsult(database, dr_bob, session)
    assert len(_events(database, "teleconsult_end")) == 1
