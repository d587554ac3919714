"""Tests for storage.export: a patient's copy of their data."""

from __future__ import annotations

from storage.export import export_user
from storage.notes import add_note
from tests.storage._factories import save_sample_scan


def test_export_contains_decrypted_records(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    add_note(database, alice, scan_id, "my own note")

    exported = export_user(database, alice)

    assert exported["user"]["username"] == "alice"
    [scan] = exported["scans"]
    assert scan["scan_date"] == "2024-03-14"
    assert scan["filename"] == "chest_front.png"
    assert scan["results"][0]["probabilities"]["pneumonia"] == 0.8
    assert scan["notes"][0]["text"] == "my own note"
