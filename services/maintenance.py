"""Operator use cases for the image quarantine (list, restore, purge, a deliberate sweep) and
the audit repair, with their command-line wiring (:func:`add_commands`).

The start-up sweep only ever moves orphaned image files aside (:mod:`storage.quarantine`);
these commands are how an operator looks at them, puts them back (after pointing the app at
the right database, say) or, explicitly and audited, deletes them.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from core.errors import UserError
from core.words import plural
from storage import audit, bootstrap, quarantine
from storage.blobs import QUARANTINE
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


def add_commands(commands: argparse._SubParsersAction, operator: str) -> None:
    """Register the quarantine and audit-repair commands on the command line's parser.

    They open the database with ``maintenance=True`` (see :func:`storage.bootstrap.open_database`),
    because they exist for exactly the situations the start-up checks refuse.

    Args:
        commands: The sub-command registry of ``services.cli``.
        operator: Who the audit trail names for these commands.
    """
    listing = commands.add_parser("list-quarantine", help="list image files set aside as orphans")
    listing.set_defaults(handler=_list_command, maintenance=True)

    restore = commands.add_parser("restore-quarantine", help="move quarantined files back")
    which = restore.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", help="a file or batch name from list-quarantine")
    which.add_argument("--all", action="store_true", help="restore everything")
    restore.set_defaults(handler=_restore_command, maintenance=True, operator=operator)

    purge = commands.add_parser("purge-quarantine", help="delete old quarantined files for good")
    purge.add_argument("--older-than-days", type=int, required=True)
    purge.add_argument("--yes", action="store_true", help="confirm the deletion")
    purge.set_defaults(handler=_purge_command, maintenance=True, operator=operator)

    sweep = commands.add_parser(
        "quarantine-orphans", help="set aside image files no scan refers to (app stopped)"
    )
    sweep.add_argument("--min-age-hours", type=float, default=24.0)
    sweep.add_argument("--yes", action="store_true", help="confirm")
    sweep.set_defaults(handler=_sweep_command, maintenance=True, operator=operator)

    repair = commands.add_parser(
        "repair-audit", help="start a new audit segment after a break, keeping its evidence"
    )
    repair.add_argument("--yes", action="store_true", help="confirm")
    repair.set_defaults(handler=_repair_command, operator=operator)


def _print_entries(entries: list[QuarantinedBlob]) -> None:
    for e in entries:
        print(f"{e.batch}  {e.name}  {e.size} bytes  {e.quarantined_at:%Y-%m-%d %H:%M} UTC")


def _list_command(db: Database, args: argparse.Namespace) -> int:
    entries = list_quarantine(db)
    _print_entries(entries)
    print(f"{plural(len(entries), 'file')} in {db.blobs.location.rstrip('/')}/{QUARANTINE}")
    return 0


def _restore_command(db: Database, args: argparse.Namespace) -> int:
    restored = restore_quarantine(db, None if args.all else args.name, operator=args.operator)
    print(f"restored {plural(len(restored), 'file')}")
    return 0


def _purge_command(db: Database, args: argparse.Namespace) -> int:
    if not args.yes:
        cutoff = datetime.now(UTC) - timedelta(days=args.older_than_days)
        chosen = [e for e in list_quarantine(db) if e.quarantined_at <= cutoff]
        _print_entries(chosen)
        print(f"{plural(len(chosen), 'file')} would be deleted for good; add --yes to delete them")
        return 1
    purged = purge_quarantine(db, args.older_than_days, operator=args.operator)
    print(f"deleted {plural(len(purged), 'file')} for good")
    return 0


def _sweep_command(db: Database, args: argparse.Namespace) -> int:
    if not args.yes:
        print(
            "stop the app first (an upload in progress is younger than --min-age-hours), "
            "then add --yes"
        )
        return 1
    moved = quarantine_orphans(
        db, operator=args.operator, min_age=timedelta(hours=args.min_age_hours)
    )
    print(f"moved {plural(len(moved), 'file')} to the quarantine")
    return 0


def _repair_command(db: Database, args: argparse.Namespace) -> int:
    if not args.yes:
        print("this starts a new audit segment after the break; add --yes to do it")
        return 1
    repaired = audit.repair_chain(db, args.operator)
    print(
        f"audit trail repaired: break {repaired.id} ({repaired.reason}) recorded, new segment "
        f"from event {repaired.repair_seq}"
    )
    return 0
