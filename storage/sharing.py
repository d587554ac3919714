"""Patients share scans with clinicians; clinicians may request emergency access.

Emergency (break-glass) access needs two people: a clinician requests it with a reason, and a
different clinician or an administrator approves it within
``Settings.emergency_approval_minutes``; only then, and only for the requested minutes, does
it open the patient's records (:func:`storage.policy.check_read`).

The approver must be independent of the requester, as far as the audit trail can tell: whoever
creates an account or resets its password chooses or sees a password of it, and may hold it
(the admin who did the first password change, or a colleague the temporary password was given
to). So an approval is refused when (:func:`_independence_refusal`):

- the approver created or reset the requester's account, or the other way round, ever;
- one person created or reset both accounts, ever (the sock-puppet chain: an admin creates X
  and Y, X requests, Y approves; and the colleague-account chain: an admin who also works as
  clinician X resets colleague Y's password, and X requests while Y approves);
- an administrator created or reset either account in the last
  ``Settings.emergency_independence_days`` days: a fresh account's owner has not yet had the
  time to notice what is done in their name;
- the approver created or reset the patient's account in the last
  :data:`APPROVER_COOLING_HOURS` hours.

Accounts made at the command line count as created by nobody: whoever runs it holds the master
key (see SECURITY.md). A patient may refuse emergency access in advance
(:func:`refuse_emergency_access`): no request, approval or read then goes through. The patient
sees the request, the approval and every read under it, and the reads in a banner until they
acknowledge them (:func:`storage.access_log.emergency_read_notices`). Administrators see that a
request states a reason, never the reason itself: it is the clinician's words about a patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from storage import audit, policy, schema
from storage.accounts import AccountError, normalize_username
from storage.actor import Actor
from storage.db import Database, retry_when_busy

MAX_GRANT_HOURS = 24 * 365
MIN_REASON_CHARS = 10
MAX_EMERGENCY_MINUTES = 24 * 60
#: An approver must not have created or reset the patient's or the requester's account within
#: this many hours.
APPROVER_COOLING_HOURS = 24
_EMERGENCY_TABLE = "emergency_accesses"
_ACCOUNT_CONTROL = ("register", "admin_reset_password")
_REFUSED_BY_PATIENT = (
    "This patient has refused emergency access to their records in advance; only a share "
    "they give opens them."
)


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
    allow_adding_films: bool = False

    @property
    def active(self) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and self.expires_at > schema.utcnow()


@dataclass(frozen=True)
class SharedPatient:
    """A patient whose records a clinician can currently open.

    Attributes:
        may_add_films: An active grant of the patient allows the clinician to add films.
    """

    patient_id: int
    username: str
    expires_at: datetime
    emergency: bool = False
    may_add_films: bool = False


@dataclass(frozen=True)
class EmergencyInfo:
    """An emergency access request as shown to the patient concerned.

    Attributes:
        expires_at: The approval deadline while unapproved, then the end of the access.
    """

    id: int
    clinician_username: str
    reason: str
    created_at: datetime
    expires_at: datetime
    approver_username: str | None
    approved_at: datetime | None

    @property
    def state(self) -> str:
        """``waiting for approval``, ``not approved in time``, ``open`` or ``ended``."""
        live = self.expires_at > schema.utcnow()
        if self.approved_at is None:
            return "waiting for approval" if live else "not approved in time"
        return "open" if live else "ended"


@dataclass(frozen=True)
class EmergencyRequest:
    """A pending emergency request as shown to those who may approve it.

    Attributes:
        reason: The stated reason for a clinician; ``None`` for an administrator, who sees
            that a reason was given (every request states one) but reads no clinical text.
    """

    id: int
    clinician_username: str
    patient_username: str
    reason: str | None
    minutes: int
    created_at: datetime
    approve_before: datetime
    own: bool


@retry_when_busy
def grant_access(
    db: Database,
    actor: Actor,
    clinician_username: str,
    scan_ids: list[int] | None = None,
    hours: int = 24,
    allow_adding_films: bool = False,
) -> int:
    """Let a clinician read all (``scan_ids=None``) or some of the patient's scans for a while.

    With ``allow_adding_films`` the patient also consents that the clinician adds films to
    their record while the grant lasts (from the hospital's PACS, ``services.pacs``); the
    consent is recorded on the grant and in the audit trail.

    Args:
        db: Database handle.
        actor: The patient sharing.
        clinician_username: Who receives access.
        scan_ids: The patient's own scans to share, or ``None`` for all.
        hours: Lifetime of the grant (1 hour to 1 year).
        allow_adding_films: The patient's consent that the clinician may add films.

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
            allow_adding_films=allow_adding_films,
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
                "adds_films": allow_adding_films,
            },
        )
        return grant_id


@retry_when_busy
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
                g.allow_adding_films,
            )
            for g in grants
        ]


def shared_patients(db: Database, actor: Actor) -> list[SharedPatient]:
    """Patients a clinician can open now (grants and own approved emergency accesses).

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
            .where(col(schema.EmergencyAccess.approved_at).is_not(None))
            .where(schema.EmergencyAccess.expires_at > now)
        ).all()
        entries = [(g.patient_id, g.expires_at, False) for g in grants]
        entries += [
            (e.patient_id, e.expires_at, True)
            for e in emergencies
            if not policy.refuses_emergency(session, e.patient_id)
        ]
        names = _usernames(session, {pid for pid, _, _ in entries})
        adds_films = {g.patient_id for g in grants if g.allow_adding_films}
        for patient_id, expires_at, emergency in entries:
            known = latest.get(patient_id)
            if known is None or expires_at > known.expires_at:
                latest[patient_id] = SharedPatient(
                    patient_id,
                    names[patient_id],
                    expires_at,
                    emergency,
                    may_add_films=patient_id in adds_films,
                )
        audit.append(
            session, db, "list_shared_patients", actor=actor, details={"count": len(latest)}
        )
    return sorted(latest.values(), key=lambda p: p.username)


def request_emergency_access(
    db: Database, actor: Actor, patient_username: str, reason: str, minutes: int = 60
) -> int:
    """Ask to open a patient's records without a grant, stating why (break-glass).

    The request opens nothing until someone else approves it
    (:func:`approve_emergency_access`) within ``Settings.emergency_approval_minutes``. It is
    flagged ``emergency`` in the audit trail and shown to the patient with the stated reason
    (sealed with the patient's key).

    Args:
        db: Database handle.
        actor: The clinician.
        patient_username: Whose records.
        reason: Why (at least 10 characters).
        minutes: How long the access lasts once approved (1 minute to 24 hours).

    Returns:
        The request id.

    Raises:
        ValueError: Reason too short or ``minutes`` out of range.
        policy.AccessDenied: The actor is not an active clinician, or the patient refused
            emergency access in advance.
        AccountError: No active patient has that username.
    """
    reason = reason.strip()
    if len(reason) < MIN_REASON_CHARS:
        raise ValueError(f"State the reason in at least {MIN_REASON_CHARS} characters.")
    if not 1 <= minutes <= MAX_EMERGENCY_MINUTES:
        raise ValueError(f"Emergency access lasts between 1 and {MAX_EMERGENCY_MINUTES} minutes.")
    policy.require_role(actor, schema.Role.CLINICIAN)
    approval_minutes = db.settings.emergency_approval_minutes
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        patient = _find_user(session, patient_username, schema.Role.PATIENT)
        patient_id = schema.stored_id(patient.id)
        if policy.refuses_emergency(session, patient_id):
            raise policy.AccessDenied(_REFUSED_BY_PATIENT)
        sealer = db.keyring.sealer(session, patient_id)
        now = schema.utcnow()
        row = schema.EmergencyAccess(
            clinician_id=actor.user_id,
            patient_id=patient_id,
            key_version=sealer.version,
            minutes=minutes,
            created_at=now,
            expires_at=now + timedelta(minutes=approval_minutes),
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
            "emergency_request",
            actor=actor,
            patient_id=patient_id,
            record_type=_EMERGENCY_TABLE,
            record_id=row_id,
            emergency=True,
            details={"minutes": minutes, "approve_within_minutes": approval_minutes},
        )
        return row_id


def pending_emergency_requests(db: Database, actor: Actor) -> list[EmergencyRequest]:
    """Unexpired, unapproved emergency requests, oldest first, for clinicians and admins.

    A clinician approving needs the stated reason to judge a request, so it is shown to
    clinicians; an administrator sees who asks, for whom, when, and that a reason was given,
    never its text (admins read no clinical text). Each listing is audited once per patient
    concerned, so the patient sees who was shown their request.

    Raises:
        policy.AccessDenied: The actor is not an active clinician or admin.
        crypto.DecryptionError: A reason fails its integrity check.
    """
    policy.require_role(actor, schema.Role.CLINICIAN, schema.Role.ADMIN)
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        rows = session.exec(
            select(schema.EmergencyAccess)
            .where(col(schema.EmergencyAccess.approved_at).is_(None))
            .where(schema.EmergencyAccess.expires_at > schema.utcnow())
            .order_by(col(schema.EmergencyAccess.id))
        ).all()
        names = _usernames(session, {r.clinician_id for r in rows} | {r.patient_id for r in rows})
        # Not even opened for an admin: the text never leaves the sealed column for them.
        clinician = actor.role == schema.Role.CLINICIAN.value
        out = [
            EmergencyRequest(
                schema.stored_id(row.id),
                names[row.clinician_id],
                names[row.patient_id],
                _reason(session, db, row) if clinician else None,
                row.minutes,
                row.created_at,
                row.expires_at,
                row.clinician_id == actor.user_id,
            )
            for row in rows
        ]
        for patient_id in sorted({r.patient_id for r in rows}):
            audit.append(
                session,
                db,
                "view_emergency_requests",
                actor=actor,
                patient_id=patient_id,
                record_type=_EMERGENCY_TABLE,
                details={"count": sum(r.patient_id == patient_id for r in rows)},
            )
    return out


def approve_emergency_access(db: Database, actor: Actor, request_id: int) -> None:
    """Approve another clinician's emergency request: it opens the records for its minutes.

    Args:
        db: Database handle.
        actor: A clinician or an admin who is not the requester.
        request_id: The request.

    Raises:
        policy.AccessDenied: The actor is not an active clinician or admin, is the requester
            or not independent of them (see the module note), created or reset the patient's
            account in the last :data:`APPROVER_COOLING_HOURS` hours; the patient refused
            emergency access; or the request does not exist, is already approved or expired
            unapproved, or its requester is no longer an active clinician.
    """
    policy.require_role(actor, schema.Role.CLINICIAN, schema.Role.ADMIN)
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        row = session.exec(
            select(schema.EmergencyAccess)
            .where(schema.EmergencyAccess.id == request_id)
            .with_for_update()
        ).first()
        if row is None:
            raise policy.AccessDenied("This emergency request does not exist.")
        now = schema.utcnow()
        if row.approved_at is not None:
            raise policy.AccessDenied("This emergency request is already approved.")
        if row.expires_at <= now:
            raise policy.AccessDenied(
                "This emergency request was not approved in time and has expired; the "
                "clinician must make a new request."
            )
        if row.clinician_id == actor.user_id:
            raise policy.AccessDenied(
                "You cannot approve your own emergency request; another clinician or an "
                "administrator must approve it."
            )
        requester = session.get(schema.User, row.clinician_id)
        if (
            requester is None
            or not requester.is_active
            or requester.role != schema.Role.CLINICIAN.value
        ):
            raise policy.AccessDenied("The clinician who made this request is no longer active.")
        if policy.refuses_emergency(session, row.patient_id):
            raise policy.AccessDenied(_REFUSED_BY_PATIENT)
        refusal = _independence_refusal(
            session,
            actor.user_id,
            row.clinician_id,
            now,
            timedelta(days=db.settings.emergency_independence_days),
        )
        if refusal is not None:
            raise policy.AccessDenied(refusal)
        if _controlled_recently(session, actor.user_id, {row.patient_id}, now):
            raise policy.AccessDenied(
                f"You created or reset one of the accounts concerned in the last "
                f"{APPROVER_COOLING_HOURS} hours, so someone else must approve this request."
            )
        row.approver_id = actor.user_id
        row.approved_at = now
        row.expires_at = now + timedelta(minutes=row.minutes)
        session.add(row)
        audit.append(
            session,
            db,
            "emergency_approve",
            actor=actor,
            patient_id=row.patient_id,
            record_type=_EMERGENCY_TABLE,
            record_id=request_id,
            emergency=True,
            details={"requester": requester.username, "minutes": row.minutes},
        )


def _independence_refusal(
    session: Session, approver_id: int, requester_id: int, now: datetime, period: timedelta
) -> str | None:
    """Why the approver is not independent of the requester, or ``None`` when they are.

    Reads who created and who reset each account from the audit trail (``register`` and
    ``admin_reset_password`` events name the account in ``record_id`` and the person in
    ``actor_id``; an account's own self-registration and the command line name nobody).
    See the module note for the rules.
    """
    event = schema.AuditEvent
    rows = session.exec(
        select(event.record_id, event.actor_id, event.ts)
        .where(col(event.action).in_(_ACCOUNT_CONTROL))
        .where(event.record_type == "users")
        .where(col(event.record_id).in_(sorted({approver_id, requester_id})))
    ).all()
    controllers: dict[int, set[int]] = {approver_id: set(), requester_id: set()}
    recent = False
    for account_id, controller_id, ts in rows:
        if account_id is None or controller_id is None or controller_id == account_id:
            continue
        controllers[account_id].add(controller_id)
        recent = recent or datetime.fromisoformat(ts) >= now - period
    if approver_id in controllers[requester_id] or requester_id in controllers[approver_id]:
        return (
            "You created or reset the account of the clinician who asks (or they yours), so "
            "someone independent of them must approve this request."
        )
    if controllers[approver_id] & controllers[requester_id]:
        return (
            "The same person created or reset both your account and the account of the "
            "clinician who asks, so someone independent of both must approve this request."
        )
    if recent:
        return (
            "Your account or the account of the clinician who asks was created or had its "
            f"password reset by an administrator in the last {period.days} days, so another "
            "approver must approve this request."
        )
    return None


def refuse_emergency_access(db: Database, actor: Actor, refuse: bool) -> None:
    """Refuse emergency access to one's own records in advance, or allow it again (audited).

    While refused, no emergency request for the patient is accepted or approved, and an
    access already approved opens nothing more (:func:`storage.policy.check_read`). Grants the
    patient gives are unaffected.

    Args:
        db: Database handle.
        actor: The patient.
        refuse: ``True`` to refuse, ``False`` to allow emergency access again.

    Raises:
        policy.AccessDenied: The actor is not an active patient.
    """
    with db.transaction() as session:
        policy.check_write(session, actor, actor.user_id)
        preference = locked_preference(session, actor.user_id)
        preference.refuses = refuse
        preference.updated_at = schema.utcnow()
        session.add(preference)
        audit.append(
            session,
            db,
            "emergency_preference",
            actor=actor,
            patient_id=actor.user_id,
            details={"refuses": refuse},
        )


def refuses_emergency_access(db: Database, actor: Actor) -> bool:
    """Whether the patient has refused emergency access in advance (not audited: their own
    setting, read on every run of their sharing page).

    Raises:
        policy.AccessDenied: The actor is not an active patient.
    """
    with db.transaction() as session:
        policy.check_write(session, actor, actor.user_id)
        return policy.refuses_emergency(session, actor.user_id)


def locked_preference(session: Session, patient_id: int) -> schema.EmergencyPreference:
    """The patient's emergency preference row, locked for a change (a new one, to be added,
    if they never set anything)."""
    row = session.exec(
        select(schema.EmergencyPreference)
        .where(schema.EmergencyPreference.patient_id == patient_id)
        .with_for_update()
    ).first()
    return row or schema.EmergencyPreference(patient_id=patient_id)


def _controlled_recently(
    session: Session, approver_id: int, account_ids: set[int], now: datetime
) -> bool:
    """Whether the approver created or reset one of the accounts within the cooling period.

    The audit trail is the record of who created and reset accounts (``register`` and
    ``admin_reset_password`` events name the account in ``record_id``).
    """
    event = schema.AuditEvent
    stamps = session.exec(
        select(event.ts)
        .where(event.actor_id == approver_id)
        .where(col(event.action).in_(_ACCOUNT_CONTROL))
        .where(event.record_type == "users")
        .where(col(event.record_id).in_(sorted(account_ids)))
    ).all()
    cutoff = now - timedelta(hours=APPROVER_COOLING_HOURS)
    return any(datetime.fromisoformat(ts) >= cutoff for ts in stamps)


def _reason(session: Session, db: Database, row: schema.EmergencyAccess) -> str:
    sealer = db.keyring.sealer(session, row.patient_id)
    body = sealer.open_json(
        _EMERGENCY_TABLE, schema.stored_id(row.id), row.key_version, row.payload
    )
    return str(body["reason"])


def list_emergency_accesses(db: Database, actor: Actor) -> list[EmergencyInfo]:
    """Emergency access requests for the patient's own records, newest first.

    Each comes with its reason, its approver and its state (see :class:`EmergencyInfo`).

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
        names = _usernames(
            session,
            {r.clinician_id for r in rows} | {r.approver_id for r in rows if r.approver_id},
        )
        out = [
            EmergencyInfo(
                schema.stored_id(row.id),
                names[row.clinician_id],
                _reason(session, db, row),
                row.created_at,
                row.expires_at,
                names[row.approver_id] if row.approver_id else None,
                row.approved_at,
            )
            for row in rows
        ]
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
