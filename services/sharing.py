"""Sharing a patient's records: grants to clinicians, emergency access (asked by one clinician,
approved by another person) and the records shared with a clinician (``storage.sharing``)."""

from __future__ import annotations

from core.labels import scan_labels
from storage.actor import Actor
from storage.db import Database
from storage.scans import list_scans
from storage.sharing import (
    MAX_GRANT_HOURS,
    EmergencyInfo,
    EmergencyRequest,
    GrantInfo,
    SharedPatient,
    approve_emergency_access,
    grant_access,
    list_emergency_accesses,
    list_grants,
    pending_emergency_requests,
    request_emergency_access,
    revoke_access,
    shared_patients,
)

__all__ = [
    "MAX_GRANT_HOURS",
    "EmergencyInfo",
    "EmergencyRequest",
    "GrantInfo",
    "SharedPatient",
    "approve_emergency_access",
    "grant_access",
    "list_emergency_accesses",
    "list_grants",
    "pending_emergency_requests",
    "request_emergency_access",
    "revoke_access",
    "scan_names",
    "shared_patients",
]


def scan_names(db: Database, actor: Actor, *, viewing: str | None = None) -> dict[int, str]:
    """The patient's own scans by id, each named by its one label (date and view), to choose
    which to share (listing them is audited, once per ``viewing`` when one is given)."""
    return scan_labels(list_scans(db, actor, actor.user_id, viewing=viewing))
