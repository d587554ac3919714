"""A user's copy of everything the app holds about them (data portability)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlmodel import Session, col, select

from core.views import View
from storage import audit, policy, schema
from storage.actor import Actor
from storage.db import Database
from storage.notes import open_note
from storage.profile import profile_values
from storage.results import results_by_scan
from storage.scans import open_scan_payload


def export_user(db: Database, actor: Actor) -> dict[str, Any]:
    """Everything the app holds about the actor, decrypted, as JSON-safe data.

    Patients get their scans (view, metadata, enhancement, results, notes; image size instead
    of pixels), grants and profile (birth year, display name); other roles get their account
    only.

    Returns:
        ``{"user": ..., "scans": [...], "grants": [...]}``, plus ``"profile"`` for patients.

    Raises:
        policy.AccessDenied: The account is disabled.
        crypto.DecryptionError: A stored value fails its integrity check.
    """
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        user = session.get_one(schema.User, actor.user_id)
        exported: dict[str, Any] = {
            "user": {
                "id": user.id,
                "username": user.username,
                "role": user.role,
                "created_at": user.created_at.isoformat(),
            },
            "scans": [],
            "grants": [],
        }
        if actor.role == schema.Role.PATIENT.value:
            exported["scans"] = _export_scans(session, db, actor.user_id)
            exported["profile"] = profile_values(session, db, actor.user_id)
            grants = session.exec(
                select(schema.ShareGrant).where(schema.ShareGrant.patient_id == actor.user_id)
            ).all()
            exported["grants"] = [
                {
                    "id": g.id,
                    "clinician_id": g.clinician_id,
                    "scan_ids": policy.grant_scan_ids(session, g),
                    "created_at": g.created_at.isoformat(),
                    "expires_at": g.expires_at.isoformat(),
                    "revoked_at": g.revoked_at.isoformat() if g.revoked_at else None,
                }
                for g in grants
            ]
        audit.append(
            session,
            db,
            "export",
            actor=actor,
            patient_id=actor.user_id,
            details={"scans": len(exported["scans"])},
        )
    return exported


def _export_scans(session: Session, db: Database, patient_id: int) -> list[dict[str, Any]]:
    sealer = db.keyring.sealer(session, patient_id)
    scans = session.exec(
        select(schema.Scan).where(schema.Scan.owner_id == patient_id).order_by(col(schema.Scan.id))
    ).all()
    results = results_by_scan(session, sealer, [schema.stored_id(s.id) for s in scans])
    notes = session.exec(select(schema.Note).where(schema.Note.owner_id == patient_id)).all()
    notes_by_scan: dict[int, list[dict[str, Any]]] = {}
    for note in notes:
        notes_by_scan.setdefault(note.scan_id, []).append(
            {
                "id": note.id,
                "author_id": note.author_id,
                **open_note(sealer, note),
                "created_at": note.created_at.isoformat(),
            }
        )
    out = []
    for scan in scans:
        scan_id = schema.stored_id(scan.id)
        payload = open_scan_payload(sealer, scan)
        out.append(
            {
                "id": scan_id,
                **payload,
                # Scans stored before views were recorded have no view of their own.
                "view": payload.get("view") or View.UNKNOWN.value,
                "created_at": scan.created_at.isoformat(),
                "results": [
                    {**asdict(r), "created_at": r.created_at.isoformat()}
                    for r in results.get(scan_id, [])
                ],
                "notes": notes_by_scan.get(scan_id, []),
            }
        )
    return out
