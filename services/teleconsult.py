"""Teleconsultations: a clinician's audited session with one patient who shares their scans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage import teleconsults
from storage.actor import Actor
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
        id: The session's row (``storage.teleconsults``).
        patient_id: The patient under review.
        username: The patient's username.
        started_at: When the session started (UTC).
    """

    id: int
    patient_id: int
    username: str
    started_at: datetime

    @property
    def viewing(self) -> str:
        """The viewing its reads are audited in (``storage.audit.append_read``): one per
        teleconsult session, however often its page reruns."""
        return f"teleconsult-{self.patient_id}-{self.started_at.timestamp():.6f}"


def start_teleconsult(db: Database, actor: Actor, patient: SharedPatient) -> TeleconsultSession:
    """Open a session with a patient (its own row; the start is audited).

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
    opened = teleconsults.start(db, actor, patient.patient_id)
    return TeleconsultSession(opened.id, patient.patient_id, patient.username, opened.started_at)


def end_teleconsult(db: Database, actor: Actor, session: TeleconsultSession) -> float:
    """Close a session (its row; the end and length are audited).

    Allowed after the patient's access ended, so that every started session is closed.

    Args:
        db: Database handle.
        actor: The clinician.
        session: The session :func:`start_teleconsult` opened.

    Returns:
        The session's length in minutes.
    """
    return teleconsults.end(db, actor, session.id)
