"""Emergency access as the patient has a say in it: refusing it in advance, and the banner of
emergency reads of their records they have not acknowledged yet (``storage.sharing``,
``storage.access_log``)."""

from __future__ import annotations

from storage.access_log import (
    EmergencyReadNotice,
    acknowledge_emergency_reads,
    emergency_read_notices,
)
from storage.actor import Actor
from storage.db import Database
from storage.sharing import refuse_emergency_access, refuses_emergency_access

__all__ = [
    "EmergencyReadNotice",
    "acknowledge_emergency_reads",
    "acknowledge_notices",
    "emergency_read_notices",
    "refuse_emergency_access",
    "refuses_emergency_access",
]


def acknowledge_notices(db: Database, actor: Actor, notices: list[EmergencyReadNotice]) -> None:
    """The patient saw these banners: acknowledge exactly the reads they showed (audited).

    A read made after the banners were drawn stays shown.

    Raises:
        policy.AccessDenied: The actor is not an active patient.
    """
    if notices:
        acknowledge_emergency_reads(db, actor, max(n.through_seq for n in notices))
