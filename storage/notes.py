"""Notes on scans (the patient's or a clinician's), sealed with the scan owner's data key.

Every function takes the acting user and applies :mod:`storage.policy` before touching data,
and appends an audit event in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

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
        sealer = db.keyring.sealer(session, scan.owner_id)
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


def list_notes(db: Database, actor: Actor, scan_id: int) -> list[NoteRecord]:
    """Notes on a scan, oldest first.

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
        notes = []
        for row in rows:
            body = open_note(sealer, row)
            notes.append(
                NoteRecord(
                    schema.stored_id(row.id),
                    row.scan_id,
                    row.author_id,
                    body["author"],
                    body["text"],
                    body["annotation"],
                    row.created_at,
                )
            )
        audit.append(
            session,
            db,
            "read_notes",
            actor=actor,
            patient_id=scan.owner_id,
            record_type="scans",
            record_id=scan.id,
            emergency=access.emergency,
            details={**access.audit_details(), "count": len(notes)},
        )
    return notes


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
