"""Times in the user's zone, naming the zone; never bare UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from core.localtime import format_local, to_local


def test_a_utc_time_is_shown_in_the_browsers_zone_with_its_name() -> None:
    moment = datetime(2026, 1, 12, 23, 30, tzinfo=UTC)
    assert format_local(moment, "Europe/Berlin") == "13 Jan 2026 00:30 CET"
    assert format_local(moment, "America/New_York", with_date=False) == "18:30 EST"


def test_naive_stored_times_are_read_as_utc() -> None:
    assert to_local(datetime(2026, 7, 1, 12, 0), "Europe/London").hour == 13


def test_an_unknown_or_missing_zone_prints_utc_by_name() -> None:
    moment = datetime(2026, 1, 12, 9, 5, tzinfo=UTC)
    assert format_local(moment, None) == "12 Jan 2026 09:05 UTC"
    assert format_local(moment, "Mars/Olympus_Mons") == "12 Jan 2026 09:05 UTC"
