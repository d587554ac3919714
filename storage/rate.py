"""Hourly rate limits counted in the database, so that every app process sees the same count.

Callers count and record inside the transaction of the action they limit, after taking a lock
that serialises that action, so that two processes cannot both pass the last free slot.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from storage import schema

#: The period every limit counts over.
WINDOW = timedelta(hours=1)


def count(session: Session, kind: str, subject: str | None = None) -> int:
    """How many ``kind`` events happened within :data:`WINDOW`.

    Args:
        session: The caller's open session.
        kind: What was done (``"upload"``, ``"register"``).
        subject: Who did it; ``None`` counts everyone's events.

    Returns:
        The number of events newer than :data:`WINDOW`.
    """
    event = schema.RateEvent
    query = select(func.count()).select_from(event).where(event.kind == kind)
    query = query.where(event.created_at > schema.utcnow() - WINDOW)
    if subject is not None:
        query = query.where(event.subject == subject)
    return session.exec(query).one()


def record(session: Session, kind: str, subject: str | None) -> None:
    """Count one ``kind`` event now, and forget that kind's events older than the window.

    Args:
        session: The caller's open session (the event commits or rolls back with the action).
        kind: What was done.
        subject: Who did it (a user id, a client address), or ``None`` when unknown.
    """
    event = schema.RateEvent
    now = schema.utcnow()
    session.exec(
        delete(event).where(col(event.kind) == kind).where(col(event.created_at) <= now - WINDOW)
    )
    session.add(schema.RateEvent(kind=kind, subject=subject, created_at=now))
