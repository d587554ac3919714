"""What a user is shown about who accessed their records, and about password resets.

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

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from storage import audit, policy, schema
from storage.actor import Actor
from storage.db import Database

#: Actions that open medical records, counted in the sentence about a reset.
RECORD_READS = frozenset({"list_scans", "read_scan", "read_notes", "export"})
#: How long the sentence about a reset is shown (it cannot be dismissed: whoever used the
#: temporary password could dismiss it too).
RESET_NOTICE_DAYS = 30
_RESET = "admin_reset_password"
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
