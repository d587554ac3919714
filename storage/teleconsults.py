"""Teleconsult sessions: a clinician's session with one patient, open until ended.

Whether a session is open lives in its own table (``teleconsults``), never read back from the
audit trail; its start and end are still audited, in the same transaction, for the patient's
access list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from storage import audit, policy, schema
from storage.actor import Actor
from storage.db import Database


@dataclass(frozen=True)
class Teleconsult:
    """One session.

    Attributes:
        id: Its row.
        patient_id: The patient under review.
        started_at: When it started (UTC).
        ended_at: When it ended, or None while open.
    """

    id: int
    patient_id: int
    started_at: datetime
    ended_at: datetime | None


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _of(row: schema.Teleconsult) -> Teleconsult:
    return Teleconsult(
        schema.stored_id(row.id),
        row.patient_id,
        _aware(row.started_at),
        _aware(row.ended_at) if row.ended_at else None,
    )


def start(db: Database, actor: Actor, patient_id: int) -> Teleconsult:
    """Open a session with a patient the clinician may read (audited as ``teleconsult_start``).

    A session the clinician left open with this patient is ended first (a closed browser tab).

    Raises:
        policy.AccessDenied: The actor is not an active clinician who may read this patient's
            records.
    """
    policy.require_role(actor, schema.Role.CLINICIAN)
    with db.transaction() as session:
        access = policy.check_read(session, actor, patient_id)
        for left in _open_rows(session, actor, patient_id):
            _close(session, db, actor, left)
        row = schema.Teleconsult(clinician_id=actor.user_id, patient_id=patient_id)
        session.add(row)
        session.flush()
        audit.append(
            session,
            db,
            "teleconsult_start",
            actor=actor,
            patient_id=patient_id,
            record_type="teleconsult",
            record_id=row.id,
            emergency=access.emergency,
            details=access.audit_details(),
        )
        return _of(row)


def end(db: Database, actor: Actor, teleconsult_id: int) -> float:
    """End one's own open session (audited as ``teleconsult_end`` with its length).

    A clinician whose access ended during the session may still end it, so that every started
    session is closed; anyone else, or a second end, is refused.

    Returns:
        The session's length in minutes.

    Raises:
        policy.AccessDenied: The actor is not an active clinician, or this is not their open
            session.
    """
    policy.require_role(actor, schema.Role.CLINICIAN)
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        row = session.get(schema.Teleconsult, teleconsult_id)
        if row is None or row.clinician_id != actor.user_id or row.ended_at is not None:
            raise policy.AccessDenied("There is no open session to end.")
        return _close(session, db, actor, row)


def _close(session: Session, db: Database, actor: Actor, row: schema.Teleconsult) -> float:
    row.ended_at = schema.utcnow()
    session.add(row)
    minutes = (_aware(row.ended_at) - _aware(row.started_at)).total_seconds() / 60
    audit.append(
        session,
        db,
        "teleconsult_end",
        actor=actor,
        patient_id=row.patient_id,
        record_type="teleconsult",
        record_id=row.id,
        details={"minutes": round(minutes, 1)},
    )
    return minutes


def _open_rows(session: Session, actor: Actor, patient_id: int) -> list[schema.Teleconsult]:
    return list(
        session.exec(
            select(schema.Teleconsult)
            .where(schema.Teleconsult.clinician_id == actor.user_id)
            .where(schema.Teleconsult.patient_id == patient_id)
            .where(col(schema.Teleconsult.ended_at).is_(None))
        ).all()
    )
