"""Teleconsultations: a clinician's audited session with one patient who shares their scans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from storage.actor import Actor
from storage.audit import record_session_end, record_session_start
from storage.db import Database
from storage.notes import MAX_NOTE_CHARS, add_note
from storage.sharing import SharedPatient, shared_patients

#: What the teleconsult page uses besides the session: the patients sharing with the
#: clinician, and adding a note (its length limit) to one of their scans.
__all__ = [
    "MAX_NOTE_CHARS",
    "TeleconsultSession",
    "add_note",
    "end_teleconsult",
    "shared_patients",
    "start_teleconsult",
]


@dataclass(frozen=True)
class TeleconsultSession:
    """An open teleconsultation.

    Attributes:
        patient_id: The patient under review.
        username: The patient's username.
        started_at: When the session started (UTC).
    """

    patient_id: int
    username: str
    started_at: datetime


def start_teleconsult(db: Database, actor: Actor, patient: SharedPatient) -> TeleconsultSession:
    """Open a session with a patient and record its start in the audit trail.

    Args:
        db: Database handle.
        actor: The clinician.
        patient: A patient currently sharing with the clinician.

    Returns:
        The open session.

    Raises:
        storage.policy.AccessDenied: The clinician may not read this patient's records (any
            more).
    """
    record_session_start(db, actor, patient.patient_id)
    return TeleconsultSession(patient.patient_id, patient.username, datetime.now(UTC))


def end_teleconsult(db: Database, actor: Actor, session: TeleconsultSession) -> float:
    """Close a session and record its end and length in the audit trail.

    Allowed after the patient's access ended, so that every started session is closed.

    Args:
        db: Database handle.
        actor: The clinician.
        session: The session :func:`start_teleconsult` opened.

    Returns:
        The session's length in minutes.
    """
    minutes = (datetime.now(UTC) - session.started_at).total_seconds() / 60
    record_session_end(db, actor, session.patient_id, minutes)
    return minutes
