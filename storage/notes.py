"""Notes on scans (the patient's or a clinician's), sealed with the scan owner's data key.

Every function takes the acting user and applies :mod:`storage.policy` before touching data,
and appends an audit event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.annotations import validate_annotation
from storage import audit, policy, schema
from storage.actor import Actor
from storage.db import Database
from storage.scans import get_scan
from storage.sealing import RowSealer

MAX_NOTE_CHARS = 5000
_TABLE = "notes"


@dataclass(frozen=True)
class NoteRecord:
    """A note on a scan, optionally with an annotation (a point or a box on the image)."""

    id: int
    scan_id: int
    author_id: int
    author_username: str
    text: str
    annotation: dict[str, Any] | None
    created_at: datetime
    #: For the scan's patient: someone else wrote it and the patient had not seen it before.
    new: bool = False


def add_note(
    db: Database, actor: Actor, scan_id: int, text: str, annotation: dict[str, Any] | None = None
) -> int:
    """Add a note (the patient, or a clinician who can read the scan).

    Args:
        db: Database handle.
        actor: Author.
        scan_id: Scan the note is about.
        text: Note text (1 to 5000 characters).
        annotation: ``{"x", "y"}`` for a point or ``{"x0", "y0", "x1", "y1"}`` for a box, in
            image pixel coordinates; or ``None`` (see :func:`core.annotations.validate_annotation`).

    Returns:
        The new note id.

    Raises:
        ValueError: Empty or overlong text, or a malformed annotation.
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor may not read this scan.
    """
    text = text.strip()
    if not text or len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"A note needs between 1 and {MAX_NOTE_CHARS} characters.")
    mark = validate_annotation(annotation)
    with db.transaction() as session:
        scan = get_scan(session, scan_id)
        access = policy.check_add_note(session, actor, scan.owner_id, scan_id)
        sealer = db.keyring.sealer(session, scan.owner_id, for_update=True)
        note = schema.Note(
            scan_id=schema.stored_id(scan.id),
            owner_id=scan.owner_id,
            author_id=actor.user_id,
            key_version=sealer.version,
        )
        session.add(note)
        session.flush()
        note_id = schema.stored_id(note.id)
        note.payload = sealer.seal_json(
            _TABLE,
            note_id,
            note.key_version,
            {"text": text, "annotation": mark, "author": actor.username},
        )
        session.add(note)
        audit.append(
            session,
            db,
            "add_note",
            actor=actor,
            patient_id=scan.owner_id,
            record_type="notes",
            record_id=note_id,
            emergency=access.emergency,
            details={**access.audit_details(), "scan_id": scan.id},
        )
        return note_id


def list_notes(
    db: Database, actor: Actor, scan_id: int, *, viewing: str | None = None
) -> list[NoteRecord]:
    """Notes on a scan, oldest first.

    ``viewing``: the page visit or teleconsult reading them, audited once per viewing and
    scan (:func:`storage.audit.append_read`); None audits every call.

    Returns:
        The notes; for the scan's patient, those by others they have not marked as read
        (:func:`mark_notes_read`) have ``new`` set.

    Raises:
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor may not read this scan.
    """
    with db.transaction() as session:
        scan = get_scan(session, scan_id)
        access = policy.check_read(session, actor, scan.owner_id, scan_id)
        sealer = db.keyring.sealer(session, scan.owner_id)
        rows = session.exec(
            select(schema.Note).where(schema.Note.scan_id == scan.id).order_by(col(schema.Note.id))
        ).all()
        unseen = _unseen(session, actor, [row for row in rows if row.owner_id == actor.user_id])
        notes = []
        for row in rows:
            body = open_note(sealer, row)
            note_id = schema.stored_id(row.id)
            notes.append(
                NoteRecord(
                    note_id,
                    row.scan_id,
                    row.author_id,
                    body["author"],
                    body["text"],
                    body["annotation"],
                    row.created_at,
                    new=note_id in unseen,
                )
            )
        audit.append_read(
            session,
            db,
            "read_notes",
            actor=actor,
            patient_id=scan.owner_id,
            viewing=viewing,
            record_type="scans",
            record_id=scan.id,
            emergency=access.emergency,
            details={**access.audit_details(), "count": len(notes), "new": len(unseen)},
        )
    return notes


def _unseen(session: Session, actor: Actor, rows: Sequence[schema.Note]) -> set[int]:
    """Ids of the notes in ``rows`` (the actor's own records) by others the actor has not seen."""
    by_others = {schema.stored_id(row.id) for row in rows if row.author_id != actor.user_id}
    if not by_others:
        return set()
    seen = session.exec(
        select(schema.NoteRead.note_id)
        .where(col(schema.NoteRead.patient_id) == actor.user_id)
        .where(col(schema.NoteRead.note_id).in_(by_others))
    ).all()
    return by_others - set(seen)


def mark_notes_read(db: Database, actor: Actor, scan_id: int) -> int:
    """Record that the patient has read every note by others on one of their scans.

    Args:
        db: Database handle.
        actor: The patient.
        scan_id: One of the patient's scans.

    Returns:
        How many notes were new.

    Raises:
        RecordNotFound: No such scan.
        policy.AccessDenied: The actor is not the scan's patient.
    """
    with db.transaction() as session:
        scan = get_scan(session, scan_id)
        policy.check_write(session, actor, scan.owner_id)
        rows = session.exec(select(schema.Note).where(schema.Note.scan_id == scan.id)).all()
        unseen = _unseen(session, actor, rows)
        for note_id in sorted(unseen):
            session.add(schema.NoteRead(note_id=note_id, patient_id=actor.user_id))
        audit.append(
            session,
            db,
            "mark_notes_read",
            actor=actor,
            patient_id=actor.user_id,
            record_type="scans",
            record_id=scan.id,
            details={"count": len(unseen)},
        )
    return len(unseen)


def unread_note_counts(db: Database, actor: Actor) -> dict[int, int]:
    """How many notes by others on each of the patient's own scans the patient has not seen.

    Args:
        db: Database handle.
        actor: The patient.

    Returns:
        Scan id -> number of unseen notes, for scans that have any.

    Raises:
        policy.AccessDenied: The actor is not an active patient.
    """
    with db.transaction() as session:
        policy.check_write(session, actor, actor.user_id)
        rows = session.exec(
            select(schema.Note.id, schema.Note.scan_id)
            .outerjoin(
                schema.NoteRead,
                (col(schema.NoteRead.note_id) == schema.Note.id)
                & (col(schema.NoteRead.patient_id) == actor.user_id),
            )
            .where(schema.Note.owner_id == actor.user_id)
            .where(schema.Note.author_id != actor.user_id)
            .where(col(schema.NoteRead.note_id).is_(None))
        ).all()
        counts: dict[int, int] = {}
        for _, scan_id in rows:
            counts[scan_id] = counts.get(scan_id, 0) + 1
        audit.append(
            session,
            db,
            "count_unread_notes",
            actor=actor,
            patient_id=actor.user_id,
            record_type="notes",
            details={"scans": len(counts)},
        )
    return counts


def open_note(sealer: RowSealer, note: schema.Note) -> dict[str, Any]:
    """A note's decrypted body (for storage modules only: no access check here).

    Args:
        sealer: The data keys of the scan's owner.
        note: The note row.

    Returns:
        ``{"text", "annotation", "author"}``.

    Raises:
        crypto.DecryptionError: The note fails its integrity check.
    """
    return sealer.open_json(_TABLE, schema.stored_id(note.id), note.key_version, note.payload)
