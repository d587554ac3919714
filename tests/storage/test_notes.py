"""Tests for storage.notes: notes and their marks on a scan."""

from __future__ import annotations

import pytest
from sqlmodel import select

from storage.notes import add_note, list_notes, mark_notes_read, unread_note_counts
from storage.policy import AccessDenied
from storage.scans import delete_scan
from storage.schema import NoteRead
from storage.sharing import grant_access
from tests.storage._factories import save_sample_scan


def test_notes_with_point_and_box_annotations(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    add_note(database, alice, scan_id, "a spot", {"x": 10, "y": 12})
    add_note(database, alice, scan_id, "an area", {"x0": 1, "y0": 2, "x1": 8, "y1": 9})
    add_note(database, alice, scan_id, "just text")

    notes = list_notes(database, alice, scan_id)

    assert [n.text for n in notes] == ["a spot", "an area", "just text"]
    assert notes[0].annotation == {"x": 10.0, "y": 12.0}
    assert notes[1].annotation == {"x0": 1.0, "y0": 2.0, "x1": 8.0, "y1": 9.0}
    assert notes[2].annotation is None
    assert notes[0].author_username == "alice"


@pytest.mark.parametrize(
    "text, annotation",
    [
        ("", None),
        ("   ", None),
        ("x" * 5001, None),
        ("ok", {"x": 1}),
        ("ok", {"x": -1, "y": 2}),
        ("ok", {"x0": 5, "y0": 5, "x1": 1, "y1": 9}),
    ],
)
def test_invalid_notes_are_refused(database, make_user, text, annotation) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    with pytest.raises(ValueError):
        add_note(database, alice, scan_id, text, annotation)


def test_a_clinicians_note_is_new_to_the_patient_until_they_mark_it_read(
    database, make_user
) -> None:
    alice = make_user("alice")
    doctor = make_user("doctor", role="clinician")
    scan_id = save_sample_scan(database, alice)
    grant_access(database, alice, "doctor", hours=1)
    add_note(database, alice, scan_id, "my own note")
    add_note(database, doctor, scan_id, "look here", {"x": 5, "y": 5})

    assert unread_note_counts(database, alice) == {scan_id: 1}
    assert [n.new for n in list_notes(database, alice, scan_id)] == [False, True]
    assert unread_note_counts(database, alice) == {scan_id: 1}, "listing is not reading"
    assert mark_notes_read(database, alice, scan_id) == 1
    assert unread_note_counts(database, alice) == {}
    assert [n.new for n in list_notes(database, alice, scan_id)] == [False, False]
    assert mark_notes_read(database, alice, scan_id) == 0


def test_only_the_patient_can_mark_their_notes_read(database, make_user) -> None:
    """Attack: the clinician, or another patient, marks Alice's new note as read."""
    alice, bob = make_user("alice"), make_user("bob")
    doctor = make_user("doctor", role="clinician")
    scan_id = save_sample_scan(database, alice)
    grant_access(database, alice, "doctor", hours=1)
    add_note(database, doctor, scan_id, "look here")
    for intruder in (doctor, bob):
        with pytest.raises(AccessDenied):
            mark_notes_read(database, intruder, scan_id)
    assert unread_note_counts(database, alice) == {scan_id: 1}


def test_the_clinician_reading_the_notes_does_not_mark_them_seen(database, make_user) -> None:
    alice = make_user("alice")
    doctor = make_user("doctor", role="clinician")
    scan_id = save_sample_scan(database, alice)
    grant_access(database, alice, "doctor", hours=1)
    add_note(database, doctor, scan_id, "look here")

    assert [n.new for n in list_notes(database, doctor, scan_id)] == [False]
    assert unread_note_counts(database, alice) == {scan_id: 1}


def test_unread_counts_are_only_for_the_patient_themselves(database, make_user) -> None:
    """Attack: a clinician with a grant, and another patient, ask for Alice's unread notes."""
    alice, bob = make_user("alice"), make_user("bob")
    doctor = make_user("doctor", role="clinician")
    scan_id = save_sample_scan(database, alice)
    grant_access(database, alice, "doctor", hours=1)
    add_note(database, doctor, scan_id, "look here")
    with pytest.raises(AccessDenied):
        unread_note_counts(database, doctor)
    assert unread_note_counts(database, bob) == {}
    assert unread_note_counts(database, alice) == {scan_id: 1}


def test_deleting_the_scan_deletes_its_seen_markers(database, make_user) -> None:
    alice = make_user("alice")
    doctor = make_user("doctor", role="clinician")
    scan_id = save_sample_scan(database, alice)
    grant_access(database, alice, "doctor", hours=1)
    add_note(database, doctor, scan_id, "look here")
    mark_notes_read(database, alice, scan_id)
    delete_scan(database, alice, scan_id)
    with database.transaction() as session:
        assert session.exec(select(NoteRead)).all() == []
