"""Server-side login sessions: started at login, checked on every page run, ended on purpose.

The browser holds a random token; the database holds only its SHA-256, so a copy of the
database opens no session. Every app process reads the same rows, so a session survives the
process that started it and ends everywhere at once: logout, a password change or reset and
disabling the account end the rows inside the transaction of that action.

A page run hands its token to :func:`check_session`, which refuses ended, idle
(``Settings.idle_timeout_minutes``), expired (``Settings.session_max_hours``), disabled and
role-changed sessions, ending the row and saying why in one sentence. Activity is written at
most once a minute (:data:`ACTIVITY_WRITE_INTERVAL`): Streamlit reruns a page on every widget
change, and a page run must not be a database write. The stored last-seen time is then up to a
minute older than the last action, and idleness is measured from it, so a session ends between
``idle_timeout_minutes - 1`` and ``idle_timeout_minutes`` after its last action: never later
than the setting, at most a minute earlier.

The session cookie is set by an HTTP route, not by the page: the page asks for a one-time code
(:func:`issue_cookie_code`), the browser brings it to the route, which trades it for a fresh
token (:func:`redeem_cookie_code`); the token never appears in a URL. The code is bound to a
random value the logging-in browser held before the login (its pre-login cookie, see
:mod:`storage.session_cookie`): another browser, lured to the route with someone's code,
does not hold that value, so it is not logged into their account (login CSRF).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from core.errors import UserError
from storage import audit, policy, schema
from storage.actor import Actor
from storage.db import Database

#: A session's last-seen time is written only when the stored one is older than this.
ACTIVITY_WRITE_INTERVAL = timedelta(seconds=60)

#: How long a one-time cookie code may wait for the browser to bring it back.
COOKIE_CODE_LIFETIME = timedelta(seconds=60)

#: Why sessions end (``user_sessions.end_reason``).
LOGOUT = "logout"
LOGOUT_EVERYWHERE = "logout_everywhere"
PASSWORD_CHANGED = "password_changed"
PASSWORD_RESET = "password_reset"
DISABLED = "disabled"
ROLE_CHANGED = "role_changed"
IDLE = "idle"
EXPIRED = "expired"

_ENDED_BECAUSE = {
    LOGOUT: "You logged out. Log in again to continue.",
    LOGOUT_EVERYWHERE: "You logged out on every device. Log in again to continue.",
    PASSWORD_CHANGED: (
        "Your password was changed, so you were logged out here. Please log in again."
    ),
    PASSWORD_RESET: (
        "An administrator reset your password, so you were logged out. Log in with the "
        "temporary password they give you."
    ),
    DISABLED: "Your account is disabled; please contact an administrator.",
    ROLE_CHANGED: "Your account was changed, so you were logged out. Please log in again.",
}

__all__ = [
    "SessionEnded",
    "check_session",
    "end_session",
    "end_token_session",
    "end_user_sessions",
    "issue_cookie_code",
    "redeem_cookie_code",
    "session_open",
    "start_session",
]


class SessionEnded(UserError):
    """The browser's session is unknown or over; the message says why, in one sentence."""

    code = "session_ended"
    default_message = "Please log in."

    def __init__(self, message: str | None = None, *, reason: str | None = None) -> None:
        """Record why the session ended.

        Args:
            message: The sentence shown to the user.
            reason: The stored end reason (``None`` for an unknown token).
        """
        super().__init__(message or self.default_message)
        self.reason = reason


def hash_token(token: str) -> str:
    """The stored form of a token or code (SHA-256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: Database, actor: Actor, client: str | None) -> str:
    """Open a session for a user who just proved who they are (audited).

    Args:
        db: Database handle.
        actor: The authenticated user.
        client: Client address as trusted by :func:`core.clients.client_address`, or ``None``.

    Returns:
        The session token, for the browser only (the database keeps its hash).

    Raises:
        policy.AccessDenied: The account is disabled or its role changed meanwhile.
    """
    token = secrets.token_urlsafe(32)
    with db.transaction() as session:
        # Not policy.ensure_active: a user with a pending password change needs a session to
        # change it in (policy refuses everything else they try).
        user = session.get(schema.User, actor.user_id)
        if user is None or not user.is_active or user.role != actor.role:
            raise policy.AccessDenied("Your account is disabled; please contact an administrator.")
        row = schema.UserSession(
            token_hash=hash_token(token),
            user_id=actor.user_id,
            role=actor.role,
            client=client[:200] if client else None,
        )
        session.add(row)
        session.flush()
        audit.append(
            session,
            db,
            "session_start",
            actor=actor,
            record_type="user_sessions",
            record_id=row.id,
            details={"client": row.client},
        )
    return token


def check_session(db: Database, token: str) -> Actor:
    """The user of an open session, refreshing its last-seen time once a minute at most.

    A session found idle, expired, disabled or with a changed role is ended here (audited),
    so the reason stays on record and every other page of that browser sees it too.

    Args:
        db: Database handle.
        token: The browser's session token.

    Returns:
        The session's user.

    Raises:
        SessionEnded: The token is unknown, or the session is over (the message says why).
    """
    settings = db.settings
    now = schema.utcnow()
    failure: SessionEnded | None = None
    with db.transaction() as session:
        row = _row(session, token)
        if row is None:
            failure = SessionEnded()
        elif row.ended_at is not None:
            failure = SessionEnded(_ended_message(row.end_reason, db), reason=row.end_reason)
        else:
            user = session.get(schema.User, row.user_id)
            reason = None
            if user is None or not user.is_active:
                reason = DISABLED
            elif user.role != row.role:
                reason = ROLE_CHANGED
            elif now - row.created_at > timedelta(hours=settings.session_max_hours):
                reason = EXPIRED
            elif now - row.last_seen_at > timedelta(minutes=settings.idle_timeout_minutes):
                reason = IDLE
            if reason is not None:
                _end(session, db, row, reason, now)
                failure = SessionEnded(_ended_message(reason, db), reason=reason)
            else:
                assert user is not None  # a missing user ended the session above
                if now - row.last_seen_at >= ACTIVITY_WRITE_INTERVAL:
                    row.last_seen_at = now
                    session.add(row)
                actor = Actor(schema.stored_id(user.id), user.username, user.role)
    if failure is not None:
        raise failure
    return actor


def end_session(db: Database, token: str, reason: str) -> None:
    """End one session now (audited); an unknown or already ended one is left as it is.

    Args:
        db: Database handle.
        token: The session's token.
        reason: Why (one of this module's reason constants).
    """
    with db.transaction() as session:
        row = _row(session, token)
        if row is not None and row.ended_at is None:
            _end(session, db, row, reason, schema.utcnow())


def end_token_session(session: Session, user_id: int, token: str, reason: str) -> int:
    """End one session of a user inside the caller's transaction (which audits it).

    Args:
        session: The caller's open session.
        user_id: Whose session it must be (another user's token ends nothing).
        token: The session's token.
        reason: Why (one of this module's reason constants).

    Returns:
        1 when an open session ended, else 0.
    """
    row = _row(session, token)
    if row is None or row.user_id != user_id or row.ended_at is not None:
        return 0
    row.ended_at = schema.utcnow()
    row.end_reason = reason
    row.cookie_code_hash = None
    session.add(row)
    return 1


def end_user_sessions(
    session: Session, user_id: int, reason: str, *, except_token: str | None = None
) -> int:
    """End every open session of a user inside the caller's transaction.

    The caller audits its own action (password change, reset, disabling, logout) and may
    record the returned count with it; the rows keep when and why each session ended.

    Args:
        session: The caller's open session (the ending commits with the action).
        user_id: Whose sessions end.
        reason: Why (one of this module's reason constants).
        except_token: A session to keep (the browser that changed its own password).

    Returns:
        How many sessions were ended.
    """
    table = schema.UserSession
    query = (
        update(table)
        .where(col(table.user_id) == user_id)
        .where(col(table.ended_at).is_(None))
        .values(ended_at=schema.utcnow(), end_reason=reason, cookie_code_hash=None)
    )
    if except_token is not None:
        query = query.where(col(table.token_hash) != hash_token(except_token))
    result = session.exec(query)
    return int(result.rowcount or 0)


def issue_cookie_code(db: Database, token: str, binding: str) -> str:
    """A one-time code that the browser trades for its session cookie (see the module note).

    Args:
        db: Database handle.
        token: The open session's token.
        binding: The logging-in browser's pre-login value; the code is redeemed only
            together with it.

    Returns:
        The code, valid for :data:`COOKIE_CODE_LIFETIME` and once.

    Raises:
        SessionEnded: The session is unknown or over.
        ValueError: ``binding`` is empty.
    """
    if not binding:
        raise ValueError("A cookie code must be bound to the browser's pre-login value.")
    code = secrets.token_urlsafe(32)
    with db.transaction() as session:
        row = _row(session, token)
        if row is None or row.ended_at is not None:
            raise SessionEnded()
        row.cookie_code_hash = _code_hash(code, binding)
        row.cookie_code_expires_at = schema.utcnow() + COOKIE_CODE_LIFETIME
        session.add(row)
    return code


def redeem_cookie_code(db: Database, code: str, binding: str | None) -> str | None:
    """Trade a one-time code for a fresh token of the same session (audited).

    The session's token changes, so a token seen by the page before the cookie was set stops
    working, and the code cannot be used twice.

    Args:
        db: Database handle.
        code: The code from :func:`issue_cookie_code`.
        binding: The pre-login value of the browser bringing the code, or ``None``.

    Returns:
        The new token, or ``None`` when the code is unknown, used, expired, its session over,
        or it was issued to a browser holding another pre-login value.
    """
    if not binding:
        return None
    now = schema.utcnow()
    with db.transaction() as session:
        table = schema.UserSession
        row = session.exec(
            select(table).where(table.cookie_code_hash == _code_hash(code, binding))
        ).first()
        if row is None:
            return None
        expires = row.cookie_code_expires_at
        row.cookie_code_hash = None
        row.cookie_code_expires_at = None
        session.add(row)
        if row.ended_at is not None or expires is None or expires < now:
            return None
        token = secrets.token_urlsafe(32)
        row.token_hash = hash_token(token)
        row.last_seen_at = now
        user = session.get_one(schema.User, row.user_id)
        audit.append(
            session,
            db,
            "session_cookie_set",
            actor=Actor(schema.stored_id(user.id), user.username, user.role),
            record_type="user_sessions",
            record_id=row.id,
        )
    return token


def session_open(db: Database, token: str) -> bool:
    """Whether a token names a session that has not ended (read only: nothing is refreshed).

    The cookie route that clears a session cookie asks first: only the cookie of a session
    the page already ended is cleared, so a request from another site cannot log a browser
    out of a live session (logout CSRF).
    """
    with db.transaction() as session:
        row = _row(session, token)
        return row is not None and row.ended_at is None


def _code_hash(code: str, binding: str) -> str:
    # Stored as one hash over both: the row answers only to the code with its browser's value.
    return hash_token(f"{hash_token(binding)}:{code}")


def _row(session: Session, token: str) -> schema.UserSession | None:
    return session.exec(
        select(schema.UserSession).where(schema.UserSession.token_hash == hash_token(token))
    ).first()


def _end(
    session: Session, db: Database, row: schema.UserSession, reason: str, now: datetime
) -> None:
    row.ended_at = now
    row.end_reason = reason
    row.cookie_code_hash = None
    session.add(row)
    user = session.get(schema.User, row.user_id)
    audit.append(
        session,
        db,
        "session_end",
        actor=Actor(schema.stored_id(user.id), user.username, user.role) if user else None,
        record_type="user_sessions",
        record_id=row.id,
        details={"reason": reason, "user_id": row.user_id},
    )


def _ended_message(reason: str | None, db: Database) -> str:
    if reason == IDLE:
        minutes = db.settings.idle_timeout_minutes
        return f"You were logged out after {minutes} minutes without activity. Please log in again."
    if reason == EXPIRED:
        hours = db.settings.session_max_hours
        return f"A login lasts at most {hours} hours, so you were logged out. Please log in again."
    return _ENDED_BECAUSE.get(reason or "", SessionEnded.default_message)
