"""Clinician flow through AppTest.

Only granted patients, a session with a note, and denied after revoke or expiry.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from storage import schema, sharing, teleconsults
from storage.notes import add_note, list_notes
from storage.policy import AccessDenied
from storage.scans import list_scans, load_scan
from tests.pages._flows import World, page, texts


def _actions(world: World) -> list[str]:
    """Every audit action so far, in chain order."""
    with world.db.transaction() as session:
        events = session.exec(select(schema.AuditEvent).order_by(schema.AuditEvent.seq)).all()
        return [event.action for event in events]


def test_without_grants_the_clinician_sees_no_patient(world: World) -> None:
    at = page("teleconsult.py", world.dr_bob).run()
    assert not at.exception
    assert "No patient is sharing their scans with you right now." in texts(at)
    assert not at.selectbox


def test_patients_cannot_open_the_teleconsult_page(world: World) -> None:
    at = page("teleconsult.py", world.alice).run()
    assert "This page is not available for your account." in texts(at)


def test_session_shows_only_the_granted_patient_and_saves_a_marked_note(world: World) -> None:
    sharing.grant_access(world.db, world.alice, "dr_bob", hours=2)
    at = page("teleconsult.py", world.dr_bob).run()
    options = at.selectbox(key="tc_patient").options
    assert len(options) == 1 and options[0].startswith("alice (access until")
    at.button(key="start_session").click()
    at = at.run()
    assert not at.exception
    assert "Session with alice" in texts(at)
    # The patient's timeline, with the same reading as on the patient's own pages.
    timeline = at.table[0].value
    assert list(timeline["Needs attention"])[0] == (
        "Pneumonia rose from 12% to 41% since the PA film of 2 Mar 2026."
    )

    # A mark is drawn by dragging on the chart, which AppTest cannot do: the drawn box is
    # covered in the browser (tests/e2e/test_marks_and_report.py) and the conversion of the
    # chart's selection in tests/core/test_annotations.py.
    assert "No mark yet: the note will be saved without one." in texts(at)
    at.text_area(key="note_text").set_value(
        "Hazy area in the left lower zone; repeat in two weeks."
    )
    at.button(key="note_add").click()
    at = at.run()
    assert not at.exception
    assert "Note saved in the patient's record." in texts(at)

    latest = world.scan_ids[-1]
    notes = list_notes(world.db, world.alice, latest)
    assert [(n.author_username, n.text, n.annotation) for n in notes] == [
        (
            "dr_bob",
            "Hazy area in the left lower zone; repeat in two weeks.",
            None,
        )
    ]
    report = page("report.py", world.alice).run()
    assert "Hazy area in the left lower zone" in texts(report), (
        "the patient sees the note on the report"
    )

    at.button(key="end_session").click()
    at = at.run()
    assert not at.exception
    actions = _actions(world)
    assert (
        actions.index("teleconsult_start")
        < actions.index("add_note")
        < actions.index("teleconsult_end")
    )


def test_after_revoke_the_open_session_is_closed_and_access_denied(world: World) -> None:
    grant_id = sharing.grant_access(world.db, world.alice, "dr_bob", hours=2)
    at = page("teleconsult.py", world.dr_bob).run()
    at.button(key="start_session").click()
    at = at.run()
    sharing.revoke_access(world.db, world.alice, grant_id)
    at = at.run()
    assert not at.exception
    assert "Your access to this patient's scans has ended, so the session was closed." in texts(at)
    assert "No patient is sharing their scans with you right now." in texts(at)
    assert "teleconsult_end" in _actions(world)
    with pytest.raises(AccessDenied):
        load_scan(world.db, world.dr_bob, world.scan_ids[0])
    with pytest.raises(AccessDenied):
        add_note(world.db, world.dr_bob, world.scan_ids[0], "late note")


def test_after_expiry_the_patient_is_gone_and_access_denied(world: World) -> None:
    sharing.grant_access(world.db, world.alice, "dr_bob", hours=1)
    # Age the grant past its end instead of waiting an hour.
    with world.db.transaction() as session:
        grant = session.exec(select(schema.ShareGrant)).one()
        grant.expires_at = schema.utcnow() - timedelta(minutes=1)
        session.add(grant)
    at = page("teleconsult.py", world.dr_bob).run()
    assert not at.exception
    assert "No patient is sharing their scans with you right now." in texts(at)
    with pytest.raises(AccessDenied):
        list_scans(world.db, world.dr_bob, world.alice.user_id)
    with pytest.raises(AccessDenied):
        teleconsults.start(world.db, world.dr_bob, world.alice.user_id)


def test_the_patients_access_log_says_who_did_what_per_day_in_one_sentence(
    world: World,
) -> None:
    sharing.grant_access(world.db, world.alice, "dr_bob", hours=2)
    for scan_id in world.scan_ids * 5:  # fifteen reads of three scans
        load_scan(world.db, world.dr_bob, scan_id)
    at = page("sharing.py", world.alice).run()
    assert not at.exception
    sentences = [m.value for m in at.markdown if m.value.startswith("dr_bob ")]
    assert len(sentences) == 1, sentences
    assert sentences[0].startswith("dr_bob viewed 3 scans on ")
    assert "(15 entries)" in " ".join(e.label for e in at.expander)


def test_a_clinicians_note_is_badged_as_new_on_my_scans_until_marked_read(world: World) -> None:
    sharing.grant_access(world.db, world.alice, "dr_bob", hours=2)
    add_note(world.db, world.dr_bob, world.scan_ids[-1], "Repeat in six weeks.", {"x": 5, "y": 6})
    at = page("history.py", world.alice).run()
    assert not at.exception
    assert "1 new note from your clinicians" in texts(at)
    assert list(at.table[0].value["New notes"]) == ["1 new note", "", ""]
    assert "Repeat in six weeks." in texts(at)
    assert any("(Mark 1 on the image)" in m.value and "New" in m.value for m in at.markdown)
    at.button(key=f"history_read_{world.scan_ids[-1]}").click()
    at = at.run()
    assert not at.exception
    assert "1 new note from your clinicians" not in texts(at)
    assert list(at.table[0].value["New notes"]) == ["", "", ""]
