"""Teleconsult sessions (storage.teleconsults): their own rows, audited, never someone else's."""

from __future__ import annotations

import pytest
from sqlmodel import select

from storage import accounts, policy, schema, sharing, teleconsults


def _events(db) -> list[tuple[int | None, str]]:
    with db.transaction() as session:
        rows = session.exec(select(schema.AuditEvent).order_by(schema.AuditEvent.seq)).all()
        return [(e.actor_id, e.action) for e in rows if e.action.startswith("teleconsult")]


def _open(db) -> list[tuple[int, int]]:
    with db.transaction() as session:
        rows = session.exec(select(schema.Teleconsult)).all()
        return [(row.clinician_id, row.patient_id) for row in rows if row.ended_at is None]


def test_sessions_cannot_be_opened_or_ended_for_someone_elses_patient(
    database, admin, make_user
) -> None:
    alice, mallory = make_user("alice"), make_user("mallory")
    doc, other = make_user("doc", "clinician"), make_user("other", "clinician")
    grant_id = sharing.grant_access(database, alice, "doc")

    with pytest.raises(policy.AccessDenied):
        teleconsults.start(database, mallory, alice.user_id)
    with pytest.raises(policy.AccessDenied):
        teleconsults.start(database, other, alice.user_id)
    opened = teleconsults.start(database, doc, alice.user_id)
    assert _open(database) == [(doc.user_id, alice.user_id)]
    for intruder in (mallory, alice, other):
        with pytest.raises(policy.AccessDenied):
            teleconsults.end(database, intruder, opened.id)
    assert _events(database) == [(doc.user_id, "teleconsult_start")]

    # After the patient revokes mid-session, the clinician may close that session once.
    sharing.revoke_access(database, alice, grant_id)
    assert teleconsults.end(database, doc, opened.id) >= 0
    with pytest.raises(policy.AccessDenied):
        teleconsults.end(database, doc, opened.id)
    assert _open(database) == []

    # A disabled clinician can close nothing, not even their own open session.
    sharing.grant_access(database, alice, "doc")
    again = teleconsults.start(database, doc, alice.user_id)
    accounts.set_disabled(database, admin, "doc", True)
    with pytest.raises(policy.AccessDenied):
        teleconsults.end(database, doc, again.id)
    assert _events(database) == [
        (doc.user_id, "teleconsult_start"),
        (doc.user_id, "teleconsult_end"),
        (doc.user_id, "teleconsult_start"),
    ]


def test_a_session_left_open_is_ended_when_the_next_one_starts(database, make_user) -> None:
    alice, doc = make_user("alice"), make_user("doc", "clinician")
    sharing.grant_access(database, alice, "doc")
    first = teleconsults.start(database, doc, alice.user_id)
    second = teleconsults.start(database, doc, alice.user_id)
    assert first.id != second.id
    assert _open(database) == [(doc.user_id, alice.user_id)]
    assert [action for _, action in _events(database)] == [
        "teleconsult_start",
        "teleconsult_end",
        "teleconsult_start",
    ]
