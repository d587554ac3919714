"""Operator use cases for the image quarantine: list, restore, purge, and a deliberate sweep.

The start-up sweep only ever moves orphaned image files aside (:mod:`storage.quarantine`);
these commands are how an operator looks at them, puts them back (after pointing the app at
the right database, say) or, explicitly and audited, deletes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.errors import UserError
from storage import audit, bootstrap, quarantine
from storage.db import Database
from storage.quarantine import QuarantinedBlob


class QuarantineError(UserError):
    """A quarantine command could not do what was asked; the sentence says why."""

    code = "quarantine"
    default_message = "The quarantine command could not be carried out."


def list_quarantine(db: Database) -> list[QuarantinedBlob]:
    """Every quarantined image file, oldest first."""
    return quarantine.entries(db.blobs)


def restore_quarantine(db: Database, name: str | None, *, operator: str) -> list[QuarantinedBlob]:
    """Move quarantined files back beside the live images, and audit it.

    Args:
        db: Database handle.
        name: A file name or a batch name as listed, or ``None`` for everything.
        operator: Who restores, as written in the audit trail.

    Returns:
        The files restored.

    Raises:
        QuarantineError: Nothing matches ``name``, or a live file of the same name exists.
    """
    chosen = [e for e in list_quarantine(db) if name is None or name in (e.name, e.batch)]
    if not chosen:
        raise QuarantineError("Nothing in the quarantine matches that name.")
    clashes = {e.name for e in chosen} & {info.name for info in db.blobs.live()}
    if clashes or len({e.name for e in chosen}) != len(chosen):
        raise QuarantineError(
            "An image file of the same name is already in use, so nothing was restored."
        )
    _audit(db, "restore_quarantine", operator, chosen)
    for entry in chosen:
        quarantine.restore(db.blobs, entry)
    return chosen


def purge_quarantine(
    db: Database, older_than_days: int, *, operator: str, now: datetime | None = None
) -> list[QuarantinedBlob]:
    """Delete quarantined files for good, audited before anything is deleted.

    Args:
        db: Database handle.
        older_than_days: Only files quarantined at least this many days ago.
        operator: Who purges, as written in the audit trail.
        now: The current time (tests pass a fixed one).

    Returns:
        The files deleted.

    Raises:
        QuarantineError: ``older_than_days`` is negative.
    """
    if older_than_days < 0:
        raise QuarantineError("The age in days cannot be negative.")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    chosen = [e for e in list_quarantine(db) if e.quarantined_at <= cutoff]
    if chosen:
        _audit(db, "purge_quarantine", operator, chosen)
    for entry in chosen:
        quarantine.purge(db.blobs, entry)
    return chosen


def quarantine_orphans(db: Database, *, operator: str, min_age: timedelta) -> list[QuarantinedBlob]:
    """Sweep on an operator's request, e.g. when the database rightly has no scans left.

    Args:
        db: Database handle (opened for maintenance, so the start-up check did not refuse it).
        operator: Who sweeps, as written in the audit trail.
        min_age: Files younger than this are left alone.

    Returns:
        The files moved to the quarantine.
    """
    moved = bootstrap.sweep_orphans(db, min_age)
    if moved:
        _audit(db, "quarantine_orphans", operator, moved)
    return moved


def _audit(db: Database, action: str, operator: str, entries: list[QuarantinedBlob]) -> None:
    with db.transaction() as session:
        audit.append(
            session,
            db,
            action,
            actor_username=operator,
            details={
                "files": len(entries),
                "bytes": sum(e.size for e in entries),
                "batches": sorted({e.batch for e in entries}),
            },
        )
