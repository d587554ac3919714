"""A patient's access log in sentences: one line per person and day, not one row per event.

"lee viewed 3 scans on 12 Jan 2026" says what fifty raw rows say. Grouping is generic over the
audit actions: the common ones have plain wording, any other action (new kinds of event
included) is named by its action words and counted, so nothing in the log is ever dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from core.labels import format_day
from core.localtime import format_local, to_local
from core.words import plural

#: Actions about one record: verb and the noun counted (distinct records).
_RECORD_ACTIONS: dict[str, tuple[str, str]] = {
    "read_scan": ("viewed", "scan"),
    "read_notes": ("read the notes on", "scan"),
    "add_note": ("added", "note"),
    "add_results": ("added results to", "scan"),
    "update_scan_date": ("changed the date of", "scan"),
    "update_scan_view": ("changed the view of", "scan"),
    "create_scan": ("added", "film"),
}

#: Actions counted as events: wording for one event.
_EVENT_ACTIONS: dict[str, str] = {
    "list_scans": "opened your list of scans",
    "teleconsult_start": "started a teleconsultation",
    "teleconsult_end": "ended a teleconsultation",
    "emergency_request": "asked for emergency access",
    "emergency_approve": "approved emergency access",
    "admin_reset_password": "reset your password",
    "login": "logged in",
    "read_birth_year": "read your birth year",
    "read_display_name": "read your display name",
    "export": "exported your records",
    "pacs_search": "searched the hospital's PACS for your films",
    "pacs_send_sr": "sent a report to the hospital's PACS",
}


class AccessEvent(Protocol):
    """The fields of an audit entry (``storage.audit.AuditEntry``) the summary reads."""

    @property
    def ts(self) -> str: ...

    @property
    def actor_username(self) -> str | None: ...

    @property
    def action(self) -> str: ...

    @property
    def record_id(self) -> int | None: ...

    @property
    def emergency(self) -> bool: ...

    @property
    def details(self) -> Mapping[str, Any]: ...

    @property
    def after_reset(self) -> bool: ...


@dataclass(frozen=True)
class AccessDay:
    """What one person did with the patient's records on one day.

    Attributes:
        person: Who (their username; "someone" when the log has no name), with
            "(after a password reset)" for the patient's own account in the first session
            after an administrator reset its password: that may not have been the patient.
        day: The day, in the patient's time zone.
        first: The first event's time, local.
        last: The last event's time, local.
        events: How many audit events the line stands for.
        emergency: Whether any of them used emergency access.
        sentence: The line, e.g. ``"lee viewed 3 scans on 12 Jan 2026 (10:02 to 10:40 CET)."``.
    """

    person: str
    day: date
    first: datetime
    last: datetime
    events: int
    emergency: bool
    sentence: str


def _record_of(event: AccessEvent, noun: str) -> object:
    # Counted by distinct record; an event about a scan may name the scan only in its details.
    record = event.details.get("scan_id", event.record_id) if noun == "scan" else event.record_id
    return record if record is not None else id(event)


def _films_added(events: list[AccessEvent]) -> list[str]:
    """ "added 3 films from St Mary's PACS", one phrase per PACS, from its imports."""
    films: dict[str, int] = {}
    for event in events:
        if event.action == "pacs_import":
            pacs = str(event.details.get("pacs") or "the hospital's PACS")
            films[pacs] = films.get(pacs, 0) + int(event.details.get("films") or 0)
    return [f"added {plural(n, 'film')} from {pacs}" for pacs, n in films.items() if n]


def _phrases(events: list[AccessEvent]) -> list[str]:
    records: dict[str, set[object]] = {}
    counts: dict[str, int] = {}
    imported = _films_added(events)
    for event in events:
        # A film someone else added is said once, by the import that brought it.
        if event.action == "pacs_import" or (event.action == "create_scan" and imported):
            continue
        if event.action in _RECORD_ACTIONS:
            noun = _RECORD_ACTIONS[event.action][1]
            records.setdefault(event.action, set()).add(_record_of(event, noun))
        else:
            counts[event.action] = counts.get(event.action, 0) + 1
    phrases = list(imported)
    for action, ids in records.items():
        verb, noun = _RECORD_ACTIONS[action]
        phrases.append(f"{verb} {plural(len(ids), noun)}")
    for action, count in counts.items():
        words = _EVENT_ACTIONS.get(action, action.replace("_", " "))
        phrases.append(words if count == 1 else f"{words} ({plural(count, 'time')})")
    return phrases


def _joined(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return f"{', '.join(phrases[:-1])} and {phrases[-1]}"


def summarise_access(events: Iterable[AccessEvent], zone: str | None) -> list[AccessDay]:
    """Group access-log events by person and local day, newest day first.

    Args:
        events: The patient's access log (``storage.audit.access_log``), in any order.
        zone: The patient's IANA time zone (``None``: UTC), which decides where a day ends.

    Returns:
        One :class:`AccessDay` per person and day; within a day, people in the order of their
        latest event, newest first.
    """
    groups: dict[tuple[str, date], list[tuple[datetime, AccessEvent]]] = {}
    for event in events:
        moment = to_local(datetime.fromisoformat(event.ts), zone)
        person = event.actor_username or "someone"
        if event.after_reset:
            person = f"{person} (after a password reset)"
        groups.setdefault((person, moment.date()), []).append((moment, event))
    days = []
    for (person, day), timed in groups.items():
        timed.sort(key=lambda pair: pair[0])
        first, last = timed[0][0], timed[-1][0]
        ordered = [event for _, event in timed]
        emergency = any(event.emergency for event in ordered)
        span = format_local(first, zone, with_date=False)
        if last != first:
            span = f"{first:%H:%M} to {format_local(last, zone, with_date=False)}"
        flag = " under EMERGENCY access" if emergency else ""
        sentence = f"{person} {_joined(_phrases(ordered))} on {format_day(day)} ({span}){flag}."
        days.append(AccessDay(person, day, first, last, len(ordered), emergency, sentence))
    days.sort(key=lambda item: (item.day, item.last), reverse=True)
    return days
