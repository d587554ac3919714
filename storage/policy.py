"""The access policy, in one place. Storage functions call these checks before touching data.

- patient: reads and writes only their own records.
- clinician: reads a patient's records only while a grant from that patient is active,
  unexpired and (when it lists scans) covers the scan, or during an emergency access they
  requested with a reason and another person approved; may add notes to scans they can
  read; may add films to the record when the patient allowed it on the grant
  (:func:`check_add_films`). Never changes or deletes scans or results.
- analyst: only de-identified aggregates (``storage.cohort``).
- admin: manages accounts and the audit trail; reads no medical data.

Every check also confirms the account is still active, so disabling a user ends access at
their next storage call even if a page forgot to re-check; and that no password change is
pending, so the temporary password of a reset (which the resetting admin saw) opens nothing
but the password change itself.

Emergency access needs two people: the clinician's request opens records only once someone
independent of them has approved it (see :mod:`storage.sharing`), only until it expires, and
never for a patient who refused emergency access in advance.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from core.errors import UserError
from storage import schema
from storage.actor import Actor


class AccessDenied(UserError, PermissionError):
    """The actor may not do this; the message is one plain sentence."""

    code = "access_denied"
    default_message = "You do not have access to this."


@dataclass(frozen=True)
class Access:
    """Why a read is allowed, and which scans it covers.

    Attributes:
        via: ``owner``, ``grant`` or ``emergency``.
        scan_ids: Scans covered, or ``None`` for all of the patient's scans.
        grant_id: The grant used, when ``via == "grant"``.
        emergency_id: The emergency access used, when ``via == "emergency"``.
    """

    via: str
    scan_ids: frozenset[int] | None = None
    grant_id: int | None = None
    emergency_id: int | None = None

    @property
    def emergency(self) -> bool:
        """Whether this access relies on break-glass rights."""
        return self.via == "emergency"

    def covers(self, scan_id: int) -> bool:
        """Whether the access includes ``scan_id``."""
        return self.scan_ids is None or scan_id in self.scan_ids

    def audit_details(self) -> dict[str, object]:
        """Facts about this access for the audit trail."""
        details: dict[str, object] = {"via": self.via}
        if self.grant_id is not None:
            details["grant_id"] = self.grant_id
        if self.emergency_id is not None:
            details["emergency_id"] = self.emergency_id
        return details


def require_role(actor: Actor, *roles: schema.Role | str) -> None:
    """Refuse actors whose role is not one of ``roles``.

    Raises:
        AccessDenied: The role does not match.
    """
    allowed = {r.value if isinstance(r, schema.Role) else r for r in roles}
    if actor.role not in allowed:
        raise AccessDenied("Your account is not allowed to do this.")


def require_own_records(actor: Actor, patient_id: int) -> None:
    """Refuse anyone but the patient themselves.

    Raises:
        AccessDenied: The actor is not that patient.
    """
    if actor.role != schema.Role.PATIENT.value or actor.user_id != patient_id:
        raise AccessDenied("You can only do this with your own records.")


class PasswordChangeRequired(AccessDenied):
    """The account's password was reset (or is a one-time password) and not yet changed."""

    code = "password_change_required"
    default_message = (
        "Choose a new password on the Account page first: until you do, your account can do "
        "nothing else."
    )


def ensure_active(session: Session, actor: Actor, *, password_change_allowed: bool = False) -> None:
    """Refuse disabled or deleted accounts, actors whose role changed, and pending changes.

    Every storage entry point that acts for a user calls this (directly or through the
    checks below), so it is the one place where a pending password change blocks them all.

    Args:
        session: Open session.
        actor: Who asks.
        password_change_allowed: The caller is the password change itself, or opens the
            login session in which it is made: the only actions allowed while a change is
            pending.

    Raises:
        AccessDenied: The account is disabled, missing or its role differs.
        PasswordChangeRequired: The password must be changed first.
    """
    user = session.get(schema.User, actor.user_id)
    if user is None or not user.is_active or user.role != actor.role:
        raise AccessDenied("Your account is disabled; please contact an administrator.")
    if user.must_change_password and not password_change_allowed:
        raise PasswordChangeRequired()


def require_admin(session: Session, actor: Actor) -> None:
    """An active admin (see :func:`require_role`, :func:`ensure_active`)."""
    require_role(actor, schema.Role.ADMIN)
    ensure_active(session, actor)


def check_read(
    session: Session, actor: Actor, patient_id: int, scan_id: int | None = None
) -> Access:
    """Decide whether ``actor`` may read ``patient_id``'s medical records.

    Args:
        session: Open session.
        actor: Who asks.
        patient_id: Owner of the records.
        scan_id: The one scan asked for, or ``None`` for the patient's list.

    Returns:
        The access that applies.

    Raises:
        AccessDenied: No rule allows it.
    """
    ensure_active(session, actor)
    if actor.role == schema.Role.PATIENT.value and actor.user_id == patient_id:
        return Access("owner")
    if actor.role == schema.Role.CLINICIAN.value:
        now = schema.utcnow()
        grant = _grant_access(session, actor.user_id, patient_id, now)
        # A grant that covers the request is preferred, so emergency rights are flagged
        # only when they are actually needed.
        if grant is not None and (
            grant.scan_ids is None or (scan_id is not None and grant.covers(scan_id))
        ):
            return grant
        emergency = _emergency_access(session, actor.user_id, patient_id, now)
        if emergency is not None:
            return emergency
        if grant is not None and scan_id is None:
            return grant
    raise AccessDenied("You do not have access to these records.")


def check_write(session: Session, actor: Actor, patient_id: int) -> Access:
    """Only the patient may create, change or delete their scans and results.

    Raises:
        AccessDenied: The actor is not that patient.
    """
    ensure_active(session, actor)
    require_own_records(actor, patient_id)
    return Access("owner")


def check_add_films(session: Session, actor: Actor, patient_id: int) -> Access:
    """The patient, or a clinician the patient consented may add films, stores a scan.

    A clinician needs an active (unrevoked, unexpired) grant from the patient on which the
    patient allowed adding films (``ShareGrant.allow_adding_films``); emergency access never
    allows it, nor does a grant without that consent.

    Raises:
        AccessDenied: Neither applies.
    """
    ensure_active(session, actor)
    if actor.role == schema.Role.PATIENT.value and actor.user_id == patient_id:
        return Access("owner")
    if actor.role == schema.Role.CLINICIAN.value:
        grant = session.exec(
            select(schema.ShareGrant)
            .where(schema.ShareGrant.clinician_id == actor.user_id)
            .where(schema.ShareGrant.patient_id == patient_id)
            .where(col(schema.ShareGrant.allow_adding_films).is_(True))
            .where(col(schema.ShareGrant.revoked_at).is_(None))
            .where(schema.ShareGrant.expires_at > schema.utcnow())
            .order_by(col(schema.ShareGrant.id))
        ).first()
        if grant is not None:
            covered = grant_scan_ids(session, grant)
            scan_ids = None if covered is None else frozenset(covered)
            return Access("grant", scan_ids, grant_id=grant.id)
        raise AccessDenied(
            "The patient has not allowed you to add films to their record; they can allow it "
            "when they share their scans with you."
        )
    raise AccessDenied("You can only do this with your own records.")


def check_add_note(session: Session, actor: Actor, patient_id: int, scan_id: int) -> Access:
    """The patient, or a clinician who can currently read the scan, may add a note.

    Raises:
        AccessDenied: Neither applies.
    """
    return check_read(session, actor, patient_id, scan_id)


def _grant_access(
    session: Session, clinician_id: int, patient_id: int, now: datetime
) -> Access | None:
    grants = session.exec(
        select(schema.ShareGrant)
        .where(schema.ShareGrant.clinician_id == clinician_id)
        .where(schema.ShareGrant.patient_id == patient_id)
        .where(col(schema.ShareGrant.revoked_at).is_(None))
        .where(schema.ShareGrant.expires_at > now)
        .order_by(col(schema.ShareGrant.id))
    ).all()
    if not grants:
        return None
    full = next((g for g in grants if g.all_scans), None)
    if full is not None:
        return Access("grant", None, grant_id=full.id)
    covered: set[int] = set()
    for grant in grants:
        covered.update(grant_scan_ids(session, grant) or ())
    return Access("grant", frozenset(covered), grant_id=grants[0].id)


def refuses_emergency(session: Session, patient_id: int) -> bool:
    """Whether the patient refused emergency access to their records in advance."""
    preference = session.get(schema.EmergencyPreference, patient_id)
    return preference is not None and preference.refuses


def _emergency_access(
    session: Session, clinician_id: int, patient_id: int, now: datetime
) -> Access | None:
    # A refusal made after the approval ends the access too: the patient's word is current.
    if refuses_emergency(session, patient_id):
        return None
    emergency = session.exec(
        select(schema.EmergencyAccess)
        .where(schema.EmergencyAccess.clinician_id == clinician_id)
        .where(schema.EmergencyAccess.patient_id == patient_id)
        # Only an approved request opens records; until then ``expires_at`` is the deadline
        # for the approval, after it the end of the access.
        .where(col(schema.EmergencyAccess.approved_at).is_not(None))
        .where(schema.EmergencyAccess.expires_at > now)
        .order_by(col(schema.EmergencyAccess.expires_at).desc())
    ).first()
    if emergency is None:
        return None
    return Access("emergency", None, emergency_id=emergency.id)


def grant_scan_ids(session: Session, grant: schema.ShareGrant) -> list[int] | None:
    """The scans a grant covers that still exist, or ``None`` for an all-scans grant."""
    if grant.all_scans:
        return None
    link = schema.ShareGrantScan
    rows = session.exec(select(link.scan_id).where(link.grant_id == grant.id)).all()
    return sorted(rows)
