"""What a user is shown about who accessed their records, about password resets, and about
emergency reads.

Every read of a patient's records under emergency access is shown to the patient as a banner
(:func:`emergency_read_notices`) until they acknowledge it (:func:`acknowledge_emergency_reads`):
whatever else they read, they cannot miss it on their next visit.

Reads and changes by other users are listed always. A user's own actions are listed too in
one case: the first session after an administrator reset their password. The admin saw the
temporary password, so whatever happened in that session may not have been the user; it is
shown to them, in the access list and as one sentence (:func:`reset_notices`).

"That session" runs from the first login after the reset (made with the temporary password:
the login event says so) until a logout, a later login with a password of the user's own, or
the next reset. A session that is never closed therefore stays listed until one of those
happens: the list errs towards showing too much.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from core.localtime import format_local
from storage import audit, policy, schema
from storage.actor import Actor
from storage.db import Database
from storage.sharing import locked_preference

#: Actions that open medical records, counted in the sentence about a reset.
RECORD_READS = frozenset({"list_scans", "read_scan", "read_notes", "export"})
#: How long the sentence about a reset is shown (it cannot be dismissed: whoever used the
#: temporary password could dismiss it too).
RESET_NOTICE_DAYS = 30
_RESET = "admin_reset_password"
#: Emergency events that are not reads: the request and its approval, listed on their own.
_EMERGENCY_STEPS = ("emergency_request", "emergency_approve")
#: The user's own events without a patient id that mark the edges of a session.
_SESSION_EDGES = ("login", "logout", "session_end", "change_password")


@dataclass(frozen=True)
class ResetNotice:
    """One admin reset of the user's password and what followed it.

    Attributes:
        reset_at: When the password was reset.
        first_login_at: The first login with the temporary password, or ``None``.
        first_login_from: The client address of that login, as recorded.
        records_read: Record reads in that login's session.
    """

    reset_at: datetime
    first_login_at: datetime | None
    first_login_from: str | None
    records_read: int

    def sentence(self) -> str:
        """The plain sentence shown to the user."""
        reset = f"An administrator reset your password on {_when(self.reset_at)}"
        advice = (
            "If this was not you, ask a different administrator to reset your password again, "
            "tell them, and check the list of who accessed your records."
        )
        if self.first_login_at is None:
            return f"{reset}; nobody has logged in with the temporary password. {advice}"
        read = "1 record was" if self.records_read == 1 else f"{self.records_read} records were"
        return (
            f"{reset}; the first login after it was on {_when(self.first_login_at)} from "
            f"{self.first_login_from or 'an unknown address'}; {read} read in that session. "
            f"{advice}"
        )


@dataclass(frozen=True)
class EmergencyReadNotice:
    """One clinician's reads of the patient's records under emergency access, not yet
    acknowledged by the patient.

    Attributes:
        clinician_username: Who read.
        reads: How many reads.
        first_read_at: The first of them.
        last_read_at: The last of them.
        through_seq: The audit sequence number of the last, to acknowledge exactly what was
            shown (:func:`acknowledge_emergency_reads`).
    """

    clinician_username: str
    reads: int
    first_read_at: datetime
    last_read_at: datetime
    through_seq: int

    def sentence(self, zone: str | None = None) -> str:
        """The plain sentence shown to the patient, with times in the zone called ``zone``."""
        times = "once" if self.reads == 1 else f"{self.reads} times"
        when = format_local(self.first_read_at, zone)
        if self.reads > 1:
            when = f"between {when} and {format_local(self.last_read_at, zone)}"
        else:
            when = f"on {when}"
        return (
            f"EMERGENCY ACCESS: {self.clinician_username} opened your records without your "
            f"permission {times}, {when}. The reason they gave and who approved it are on "
            "the Sharing & access page."
        )


@dataclass
class _Window:
    reset: schema.AuditEvent
    login: schema.AuditEvent | None = None
    events: list[schema.AuditEvent] = field(default_factory=list)


def access_log(db: Database, actor: Actor, patient_id: int) -> list[audit.AuditEntry]:
    """Who read or changed a patient's records, newest first ("who saw my scans").

    Args:
        db: Database handle.
        actor: The patient asking.
        patient_id: Must be the actor's own id.

    Returns:
        Events by other users concerning the patient (emergency requests, approvals and
        reads, password resets included), and the patient's own events in the first session
        after each reset (``after_reset``).

    Raises:
        policy.AccessDenied: The actor is not that patient, the account is disabled or a
            password change is pending.
    """
    policy.require_own_records(actor, patient_id)
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        others = session.exec(
            select(schema.AuditEvent)
            .where(schema.AuditEvent.patient_id == patient_id)
            # Events without an actor (an operator at the command line) are someone else too.
            .where(
                or_(
                    col(schema.AuditEvent.actor_id).is_(None),
                    col(schema.AuditEvent.actor_id) != patient_id,
                )
            )
        ).all()
        entries = [audit.to_entry(row) for row in others]
        for window in _reset_windows(session, patient_id):
            entries += [replace(audit.to_entry(e), after_reset=True) for e in window.events]
        audit.append(session, db, "view_access_log", actor=actor, patient_id=patient_id)
    return sorted(entries, key=lambda e: e.seq, reverse=True)


def reset_notices(db: Database, actor: Actor) -> list[ResetNotice]:
    """The resets of the actor's own password in the last :data:`RESET_NOTICE_DAYS`, newest first.

    Not audited: it reads only the account's own audit events, no medical record, and pages
    ask on every run.

    Raises:
        policy.AccessDenied: The account is disabled or a password change is pending.
    """
    cutoff = schema.utcnow() - timedelta(days=RESET_NOTICE_DAYS)
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        notices = []
        for window in _reset_windows(session, actor.user_id):
            reset_at = _parse(window.reset.ts)
            if reset_at < cutoff:
                continue
            login = window.login
            notices.append(
                ResetNotice(
                    reset_at=reset_at,
                    first_login_at=_parse(login.ts) if login else None,
                    first_login_from=str(audit.to_entry(login).details.get("client"))
                    if login
                    else None,
                    records_read=sum(e.action in RECORD_READS for e in window.events),
                )
            )
    return notices[::-1]


def emergency_read_notices(db: Database, actor: Actor) -> list[EmergencyReadNotice]:
    """Reads of the patient's records under emergency access since they last acknowledged
    them, one notice per clinician, in the order of their first read.

    Not audited: it reads only the audit trail's own entries about the patient, and pages ask
    on every run.

    Raises:
        policy.AccessDenied: The actor is not an active patient.
    """
    event = schema.AuditEvent
    with db.transaction() as session:
        policy.check_write(session, actor, actor.user_id)
        preference = session.get(schema.EmergencyPreference, actor.user_id)
        seen = preference.seen_through_seq if preference else 0
        rows = session.exec(
            select(event)
            .where(event.patient_id == actor.user_id)
            .where(col(event.emergency).is_(True))
            .where(event.seq > seen)
            .where(col(event.action).not_in(_EMERGENCY_STEPS))
            .order_by(col(event.seq))
        ).all()
    notices: dict[str, EmergencyReadNotice] = {}
    for row in rows:
        name = row.actor_username or "someone"
        at = _parse(row.ts)
        known = notices.get(name)
        notices[name] = (
            EmergencyReadNotice(name, 1, at, at, row.seq)
            if known is None
            else replace(known, reads=known.reads + 1, last_read_at=at, through_seq=row.seq)
        )
    return list(notices.values())


def acknowledge_emergency_reads(db: Database, actor: Actor, through_seq: int) -> None:
    """The patient saw the emergency reads up to ``through_seq``: stop showing them (audited).

    Reads after it (made while the banner was on screen) stay shown.

    Raises:
        policy.AccessDenied: The actor is not an active patient.
    """
    event = schema.AuditEvent
    with db.transaction() as session:
        policy.check_write(session, actor, actor.user_id)
        preference = locked_preference(session, actor.user_id)
        # Never past the reads that exist: a later one must still be shown.
        shown = session.exec(
            select(func.max(event.seq))
            .where(event.patient_id == actor.user_id)
            .where(col(event.emergency).is_(True))
            .where(event.seq <= through_seq)
        ).one()
        preference.seen_through_seq = max(preference.seen_through_seq, shown or 0)
        preference.updated_at = schema.utcnow()
        session.add(preference)
        audit.append(
            session,
            db,
            "acknowledge_emergency_reads",
            actor=actor,
            patient_id=actor.user_id,
            details={"through_seq": through_seq},
        )


def _reset_windows(session: Session, user_id: int) -> list[_Window]:
    """Each reset of the user's password with the user's own events in the session after it."""
    event = schema.AuditEvent
    first = session.exec(
        select(event.seq)
        .where(event.patient_id == user_id)
        .where(event.action == _RESET)
        .order_by(col(event.seq))
        .limit(1)
    ).first()
    if first is None:
        return []
    rows = session.exec(
        select(event)
        .where(event.seq >= first)
        .where(
            or_(
                col(event.patient_id) == user_id,
                and_(col(event.actor_id) == user_id, col(event.action).in_(_SESSION_EDGES)),
            )
        )
        .order_by(col(event.seq))
    ).all()
    windows: list[_Window] = []
    in_session = False
    for row in rows:
        if row.action == _RESET and row.patient_id == user_id:
            windows.append(_Window(row))
            in_session = False
            continue
        if row.actor_id != user_id or not windows:
            continue
        window = windows[-1]
        if row.action == "login":
            # Logins with the temporary password (there may be several before the change)
            # belong to the window; a login with a password of the user's own ends it.
            in_session = bool(audit.to_entry(row).details.get("pending_password_change"))
            if in_session and window.login is None:
                window.login = row
        elif window.login is None:
            continue
        if in_session:
            window.events.append(row)
            in_session = row.action not in ("logout", "session_end")
    return windows


def _parse(ts: str) -> datetime:
    value = datetime.fromisoformat(ts)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
