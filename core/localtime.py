"""Times shown to a user in their own time zone, never as bare UTC.

Stored times are UTC (naive values read back from SQLite are UTC too). Pages pass the
browser's IANA zone name (``st.context.timezone``); when it is unknown the time is printed
with "UTC" spelled out, so it is never ambiguous.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def user_zone(name: str | None) -> tzinfo:
    """The time zone called ``name`` (e.g. ``"Europe/London"``), or UTC if unknown or empty."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass  # a browser can report a zone this machine's tzdata lacks: fall back to UTC
    return UTC


def to_local(moment: datetime, zone: str | None) -> datetime:
    """``moment`` (aware, or naive UTC) expressed in the zone called ``zone``."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(user_zone(zone))


def format_local(moment: datetime, zone: str | None, *, with_date: bool = True) -> str:
    """A time for people, in their zone and naming it: ``"12 Jan 2026 14:05 CET"``.

    Args:
        moment: The time (aware, or naive UTC).
        zone: IANA zone name, or ``None`` when unknown (printed as UTC).
        with_date: Print the day before the time.

    Returns:
        The day (``"12 Jan 2026"``), the 24-hour time and the zone's abbreviation.
    """
    local = to_local(moment, zone)
    clock = f"{local:%H:%M} {local.tzname() or 'UTC'}"
    return f"{local.day} {local:%b %Y} {clock}" if with_date else clock
