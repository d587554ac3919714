"""The patient's access log grouped by person and day, in sentences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.access_summary import summarise_access


@dataclass(frozen=True)
class _Event:
    ts: str
    actor_username: str | None
    action: str
    record_id: int | None = None
    emergency: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    after_reset: bool = False


def test_fifty_views_by_one_person_on_one_day_are_one_sentence_counting_scans() -> None:
    events = [
        _Event(f"2026-01-12T10:{i % 60:02d}:00+00:00", "lee", "read_scan", record_id=i % 3)
        for i in range(50)
    ]
    (day,) = summarise_access(events, "UTC")
    assert day.events == 50
    assert day.sentence == "lee viewed 3 scans on 12 Jan 2026 (10:00 to 10:49 UTC)."


def test_days_follow_the_patients_time_zone_and_people_are_kept_apart() -> None:
    events = [
        _Event("2026-01-12T23:30:00+00:00", "lee", "read_scan", record_id=1),
        _Event("2026-01-12T12:00:00+00:00", "lee", "read_scan", record_id=2),
        _Event("2026-01-12T12:05:00+00:00", "kim", "read_scan", record_id=2),
    ]
    days = summarise_access(events, "Europe/Berlin")
    assert [(d.person, d.day.isoformat()) for d in days] == [
        ("lee", "2026-01-13"),
        ("kim", "2026-01-12"),
        ("lee", "2026-01-12"),
    ]
    assert days[0].sentence == "lee viewed 1 scan on 13 Jan 2026 (00:30 CET)."


def test_mixed_and_unknown_actions_are_all_named_and_counted() -> None:
    events = [
        _Event("2026-01-12T09:00:00+00:00", "lee", "teleconsult_start"),
        _Event("2026-01-12T09:01:00+00:00", "lee", "read_notes", 4, details={"scan_id": 4}),
        _Event("2026-01-12T09:02:00+00:00", "lee", "add_note", 9, details={"scan_id": 4}),
        _Event("2026-01-12T09:03:00+00:00", "lee", "some_future_action"),
        _Event("2026-01-12T09:04:00+00:00", "lee", "some_future_action"),
    ]
    (day,) = summarise_access(events, None)
    assert day.sentence == (
        "lee read the notes on 1 scan, added 1 note, started a teleconsultation and "
        "some future action (2 times) on 12 Jan 2026 (09:00 to 09:04 UTC)."
    )


def test_the_patients_own_session_after_a_password_reset_is_its_own_line() -> None:
    events = [
        _Event("2026-01-12T09:00:00+00:00", "ana", "read_scan", 1, after_reset=True),
        _Event("2026-01-12T09:00:00+00:00", "admin", "admin_reset_password"),
    ]
    sentences = {day.sentence for day in summarise_access(events, None)}
    assert sentences == {
        "ana (after a password reset) viewed 1 scan on 12 Jan 2026 (09:00 UTC).",
        "admin reset your password on 12 Jan 2026 (09:00 UTC).",
    }


def test_emergency_access_is_flagged_in_the_sentence() -> None:
    events = [_Event("2026-01-12T09:00:00+00:00", "er", "read_scan", 1, emergency=True)]
    (day,) = summarise_access(events, None)
    assert day.emergency and "EMERGENCY" in day.sentence


def test_films_a_clinician_added_from_the_pacs_are_said_once_with_the_pacs() -> None:
    """The import's three ``create_scan`` events and its ``pacs_import`` are one phrase."""
    pacs = {"pacs": "St Mary's PACS"}
    events = [
        _Event("2026-01-12T10:00:00+00:00", "dr.x", "pacs_search", details=pacs),
        *(
            _Event(f"2026-01-12T10:0{i}:00+00:00", "dr.x", "create_scan", record_id=i)
            for i in (1, 2, 3)
        ),
        _Event(
            "2026-01-12T10:04:00+00:00",
            "dr.x",
            "pacs_import",
            details={**pacs, "films": 3, "already_in_record": 1},
        ),
    ]
    (day,) = summarise_access(events, "UTC")
    assert day.sentence == (
        "dr.x added 3 films from St Mary's PACS and searched the hospital's PACS for your "
        "films on 12 Jan 2026 (10:00 to 10:04 UTC)."
    )
