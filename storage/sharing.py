"""Patients share scans with clinicians; clinicians may declare emergency access."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from storage import audit, policy, schema
from storage.accounts import AccountError, normalize_username
from storage.actor import Actor
from storage.db import Database

MAX_GRANT_HOURS = 24 * 365
MIN_REASON_CHARS = 10
MAX_EMERGENCY_MINUTES = 24 * 60
_EMERGENCY_TABLE = "emergency_accesses"


@dataclass(frozen=True)
class GrantInfo:
    """A share grant as listed to its patient or its clinician."""

    id: int
    patient_id: int
    patient_username: str
    clinician_id: int
    clinician_username: str
    scan_ids: list[int] | None
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and self.expires_at > schema.utcnow()


@dataclass(frozen=True)
class SharedPatient:
    """A patient whose records a clinician can currently open."""

    patient_id: int
    username: str
    expires_at: datetime
    emergency: bool = False


@dataclass(frozen=True)
class EmergencyInfo:
    """An emergency access as shown to the patient concerned."""

    id: int
    clinician_username: str
    reason: str
    created_at: datetime
    expires_at: datetime


def grant_access(
    db: Database,
    actor: Actor,
    clinician_username: str,
    scan_ids: list[int] | None = None,
    hours: int = 24,
) -> int:
    """Let a clinician read all (``scan_ids=None``) or some of the patient's scans for a while.

    Args:
        db: Database handle.
        actor: The patient sharing.
        clinician_username: Who receives access.
        scan_ids: The patient's own scans to share, or ``None`` for all.
        hours: Lifetime of the grant (1 hour to 1 year).

    Returns:
        The grant id.

    Raises:
        policy.AccessDenied: The actor is not an active patient, or a scan is not theirs.
        AccountError: No active clinician has that username.
        ValueError: ``hours`` out of range or an empty scan selection.
    """
    if not 1 <= hours <= MAX_GRANT_HOURS:
        raise ValueError(f"A share lasts between 1 and {MAX_GRANT_HOURS} hours.")
    if scan_ids is not None and not scan_ids:
        raise ValueError("Select at least one scan to share.")
    with db.transaction() as session:
        policy.check_write(session, actor, actor.user_id)
        clinician = _find_user(session, clinician_username, schema.Role.CLINICIAN)
        if scan_ids is not None:
            wanted = sorted({int(i) for i in scan_ids})
            owned = set(
                session.exec(
                    select(schema.Scan.id)
                    .where(schema.Scan.owner_id == actor.user_id)
                    .where(col(schema.Scan.id).in_(wanted))
                ).all()
            )
            if owned != set(wanted):
                raise policy.AccessDenied("You can only share your own scans.")
        grant = schema.ShareGrant(
            patient_id=actor.user_id,
            clinician_id=schema.stored_id(clinician.id),
            all_scans=scan_ids is None,
            expires_at=schema.utcnow() + timedelta(hours=hours),
        )
        session.add(grant)
        session.flush()
        grant_id = schema.stored_id(grant.id)
        if scan_ids is not None:
            session.add_all(schema.ShareGrantScan(grant_id=grant_id, scan_id=i) for i in wanted)
            session.flush()
        audit.append(
            session,
            db,
            "grant_access",
            actor=actor,
            patient_id=actor.user_id,
            record_type="share_grants",
            record_id=grant_id,
            details={
                "clinician": clinician.username,
                "hours": hours,
                "scans": "all" if scan_ids is None else len(wanted),
            },
        )
        return grant_id


def revoke_access(db: Database, actor: Actor, grant_id: int) -> None:
    """End one of the patient's own grants now.

    Raises:
        policy.AccessDenied: The grant is not the actor's.
    """
    with db.transaction() as session:
        grant = session.get(schema.ShareGrant, grant_id)
        if grant is None:
            raise policy.AccessDenied("This share does not exist or is not yours.")
        policy.check_write(session, actor, grant.patient_id)
        if grant.revoked_at is None:
            grant.revoked_at = schema.utcnow()
            session.add(grant)
        audit.append(
            session,
            db,
            "revoke_access",
            actor=actor,
            patient_id=grant.patient_id,
            record_type="share_grants",
            record_id=grant.id,
        )


def list_grants(db: Database, actor: Actor) -> list[GrantInfo]:
    """Grants the patient created, or grants a clinician received, newest first.

    Raises:
        policy.AccessDenied: The actor is neither a patient nor a clinician.
    """
    policy.require_role(actor, schema.Role.PATIENT, schema.Role.CLINICIAN)
    column = (
        schema.ShareGrant.patient_id
        if actor.role == schema.Role.PATIENT.value
        else schema.ShareGrant.clinician_id
    )
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        grants = session.exec(
            select(schema.ShareGrant)
            .where(column == actor.user_id)
            .order_by(col(schema.ShareGrant.id).desc())
        ).all()
        ids = {g.patient_id for g in grants} | {g.clinician_id for g in grants}
        names = _usernames(session, ids)
        audit.append(session, db, "list_grants", actor=actor, details={"count": len(grants)})
        return [
            GrantInfo(
                schema.stored_id(g.id),
                g.patient_id,
                names[g.patient_id],
                g.clinician_id,
                names[g.clinician_id],
                policy.grant_scan_ids(session, g),
                g.created_at,
                g.expires_at,
                g.revoked_at,
            )
            for g in grants
        ]


def shared_patients(db: Database, actor: Actor) -> list[SharedPatient]:
    """Patients a clinician can open now (grants and own emergency accesses).

    Raises:
        policy.AccessDenied: The actor is not an active clinician.
    """
    policy.require_role(actor, schema.Role.CLINICIAN)
    now = schema.utcnow()
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        latest: dict[int, SharedPatient] = {}
        grants = session.exec(
            select(schema.ShareGrant)
            .where(schema.ShareGrant.clinician_id == actor.user_id)
            .where(col(schema.ShareGrant.revoked_at).is_(None))
            .where(schema.ShareGrant.expires_at > now)
        ).all()
        emergencies = session.exec(
            select(schema.EmergencyAccess)
            .where(schema.EmergencyAccess.clinician_id == actor.user_id)
            .where(schema.EmergencyAccess.expires_at > now)
        ).all()
        entries = [(g.patient_id, g.expires_at, False) for g in grants]
        entries += [(e.patient_id, e.expires_at, True) for e in emergencies]
        names = _usernames(session, {pid for pid, _, _ in entries})
        for patient_id, expires_at, emergency in entries:
            known = latest.get(patient_id)
            if known is None or expires_at > known.expires_at:
                latest[patient_id] = SharedPatient(
                    patient_id, names[patient_id], expires_at, emergency
                )
        audit.append(
            session, db, "list_shared_patients", actor=actor, details={"count": len(latest)}
        )
    return sorted(latest.values(), key=lambda p: p.username)


def emergency_access(
    db: Database, actor: Actor, patient_username: str, reason: str, minutes: int = 60
) -> int:
    """Open a patient's records without a grant, stating why (break-glass).

    The access is time-limited, flagged ``emergency`` in the audit trail and shown to the
    patient with the stated reason (sealed with the patient's key).

    Args:
        db: Database handle.
        actor: The clinician.
        patient_username: Whose records.
        reason: Why (at least 10 characters).
        minutes: Lifetime (1 minute to 24 hours).

    Returns:
        The emergency access id.

    Raises:
        ValueError: Reason too short or ``minutes`` out of range.
        policy.AccessDenied: The actor is not an active clinician.
        AccountError: No active patient has that username.
    """
    reason = reason.strip()
    if len(reason) < MIN_REASON_CHARS:
        raise ValueError(f"State the reason in at least {MIN_REASON_CHARS} characters.")
    if not 1 <= minutes <= MAX_EMERGENCY_MINUTES:
        raise ValueError(f"Emergency access lasts between 1 and {MAX_EMERGENCY_MINUTES} minutes.")
    policy.require_role(actor, schema.Role.CLINICIAN)
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        patient = _find_user(session, patient_username, schema.Role.PATIENT)
        patient_id = schema.stored_id(patient.id)
        sealer = db.keyring.sealer(session, patient_id)
        row = schema.EmergencyAccess(
            clinician_id=actor.user_id,
            patient_id=patient_id,
            key_version=sealer.version,
            expires_at=schema.utcnow() + timedelta(minutes=minutes),
        )
        session.add(row)
        session.flush()
        row_id = schema.stored_id(row.id)
        row.payload = sealer.seal_json(
            _EMERGENCY_TABLE, row_id, row.key_version, {"reason": reason}
        )
        session.add(row)
        audit.append(
            session,
            db,
            "emergency_access",
            actor=actor,
            patient_id=patient_id,
            record_type="emergency_accesses",
            record_id=row_id,
            emergency=True,
            details={"minutes": minutes},
        )
        return row_id


def list_emergency_accesses(db: Database, actor: Actor) -> list[EmergencyInfo]:
    """Emergency accesses to the patient's own records, newest first, with the reasons.

    Raises:
        policy.AccessDenied: The actor is not an active patient.
        crypto.DecryptionError: A reason fails its integrity check or names an unknown key
            version.
    """
    with db.transaction() as session:
        policy.check_write(session, actor, actor.user_id)
        rows = session.exec(
            select(schema.EmergencyAccess)
            .where(schema.EmergencyAccess.patient_id == actor.user_id)
            .order_by(col(schema.EmergencyAccess.id).desc())
        ).all()
        sealer = db.keyring.sealer(session, actor.user_id)
        names = _usernames(session, {r.clinician_id for r in rows})
        out = []
        for row in rows:
            row_id = schema.stored_id(row.id)
            body = sealer.open_json(_EMERGENCY_TABLE, row_id, row.key_version, row.payload)
            out.append(
                EmergencyInfo(
                    row_id, names[row.clinician_id], body["reason"], row.created_at, row.expires_at
                )
            )
        audit.append(
            session,
            db,
            "list_emergency_accesses",
            actor=actor,
            patient_id=actor.user_id,
            details={"count": len(out)},
        )
    return out


def _find_user(session: Session, username: str, role: schema.Role) -> schema.User:
    user = session.exec(
        select(schema.User).where(schema.User.username == normalize_username(username))
    ).first()
    if user is None or user.role != role.value or not user.is_active:
        raise AccountError(f"No active {role.value} has this username.")
    return user


def _usernames(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.exec(
        select(schema.User.id, schema.User.username).where(col(schema.User.id).in_(sorted(ids)))
    ).all()
    return {schema.stored_id(user_id): name for user_id, name in rows}
