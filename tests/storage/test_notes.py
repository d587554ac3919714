"""Tests for storage.notes: notes and their marks on a scan."""

from __future__ import annotations

import pytest

from storage.notes import add_note, list_notes
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
