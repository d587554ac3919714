"""Accounts: registration, login with throttling, passwords, admin actions, first admin."""

from __future__ import annotations

import logging
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.clients import client_units
from core.errors import UserError
from storage import audit, login_delay, passwords, policy, rate, schema, sessions
from storage.actor import Actor
from storage.db import Database
from storage.passwords import PasswordPolicyError

_LOG = logging.getLogger(__name__)

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{2,63}$")
GENERIC_LOGIN_ERROR = (
    "Login failed: wrong username or password, or too many attempts; try again later."
)
#: The rate-event kinds of a self-registration, per client and per network, and of the
#: alert that the overall hourly number was reached (see :mod:`storage.rate`).
_REGISTER = "register"
_REGISTER_NETWORK = "register_net"
_ALERT = "register_alert"
#: The audit action of that alert.
REGISTRATION_ALERT = "registration_rate_alert"
#: PostgreSQL advisory lock key serialising self-registrations.
_REGISTRATION_LOCK = 424243

__all__ = [
    "AccountError",
    "AuthError",
    "PasswordPolicyError",
    "RegistrationRateExceeded",
    "UserInfo",
    "admin_clear_throttle",
    "admin_reset_password",
    "authenticate",
    "bootstrap_admin",
    "change_password",
    "is_active",
    "list_users",
    "logout",
    "must_change_password",
    "oidc_login",
    "operator_create_user",
    "find_actor",
    "register",
    "registration_alerts",
    "set_disabled",
]


class AuthError(UserError):
    """Login or password check failed; the message never says which part was wrong."""

    code = "auth"
    default_message = GENERIC_LOGIN_ERROR


class AccountError(UserError, ValueError):
    """An account request is invalid (bad or taken username, unknown user)."""

    code = "account"
    default_message = "This account request is not valid."


class RegistrationRateExceeded(UserError):
    """Too many accounts were self-registered in the last hour, overall or from one client."""

    code = "registration_rate"
    default_message = "Too many accounts have been created recently; please try again in an hour."


@dataclass(frozen=True)
class UserInfo:
    """An account as listed to admins (no medical data)."""

    id: int
    username: str
    role: str
    is_active: bool
    must_change_password: bool
    created_at: datetime


def normalize_username(username: str) -> str:
    """Usernames are case-insensitive: stored and compared lower-case, trimmed."""
    return username.strip().lower()


def register(
    db: Database,
    username: str,
    password: str,
    role: str = "patient",
    by: Actor | None = None,
    *,
    client_id: str | None = None,
) -> Actor:
    """Create an account with its own data key.

    Self-registrations are limited per hour per client (an IPv4 address or an IPv6 /64,
    ``Settings.registrations_per_client_per_hour``) and per network (IPv4 /24, IPv6 /48,
    ``Settings.registrations_per_network_per_hour``), counted in the database so that the
    limits hold across app processes. Reaching the overall hourly number
    (``Settings.registrations_per_hour``) alerts the admins (a ``registration_rate_alert``
    audit event, :func:`registration_alerts`) instead of refusing everyone: a handful of
    networks must not be able to stop every sign-up. Only a sign-up whose address is unknown,
    which no network limit can hold, is refused over the overall number. Accounts created by
    an admin are not limited.

    Args:
        db: Database handle.
        username: 3 to 64 characters: letters, digits, ``_ . @ -``.
        password: Must pass :func:`passwords.check_policy`.
        role: ``patient`` for self-registration; other roles need ``by`` to be an admin.
        by: Admin creating the account (who then knows its password, so the user must
            change it at first login), or ``None`` for self-registration.
        client_id: Best-effort client identity (IP address) of a self-registration, or
            ``None`` when unknown (only the overall limit then applies, as a refusal).

    Returns:
        The new user as an actor.

    Raises:
        AccountError: The username is malformed or taken, or the role unknown.
        PasswordPolicyError: The password is refused.
        policy.AccessDenied: A non-patient role was requested without an admin.
        RegistrationRateExceeded: Too many self-registrations in the last hour from this
            client or network (or in all, for an unknown address).
    """
    name = normalize_username(username)
    _validate_new_account(name, role, password)
    if role != schema.Role.PATIENT.value or by is not None:
        if by is None:
            raise policy.AccessDenied("Only an administrator can create this kind of account.")
        policy.require_role(by, schema.Role.ADMIN)
    password_hash = passwords.hash_password(password)
    with db.transaction() as session:
        if by is not None:
            policy.ensure_active(session, by)
        else:
            _count_self_registration(session, db, client_id)
        # The admin knows the password they typed: the user replaces it at first login.
        actor = _create_user(session, db, name, role, password_hash, must_change=by is not None)
        audit.append(
            session,
            db,
            "register",
            actor=by or actor,
            record_type="users",
            record_id=actor.user_id,
            details={"username": name, "role": role},
        )
    return actor


def _count_self_registration(session: Session, db: Database, client_id: str | None) -> None:
    """Refuse a self-registration over its client's or network's hourly limit, else count it.

    Raises:
        RegistrationRateExceeded: This client's or network's limit is reached, or the overall
            one for a sign-up without an address.
    """
    if session.get_bind().dialect.name == "postgresql":
        # Serialises self-registrations (SQLite runs one write transaction at a time anyway),
        # so that concurrent ones cannot all take the last free slot.
        session.exec(select(func.pg_advisory_xact_lock(_REGISTRATION_LOCK))).one()
    settings = db.settings
    overall = rate.count(session, _REGISTER)
    if client_id is None:
        if overall >= settings.registrations_per_hour:
            raise RegistrationRateExceeded()
        rate.record(session, _REGISTER, None)
    else:
        units = client_units(client_id[:150])
        limits = [(_REGISTER, f"client:{units.host}", settings.registrations_per_client_per_hour)]
        if units.network is not None:
            limits.append(
                (
                    _REGISTER_NETWORK,
                    f"net:{units.network}",
                    settings.registrations_per_network_per_hour,
                )
            )
        if any(rate.count(session, kind, subject) >= limit for kind, subject, limit in limits):
            raise RegistrationRateExceeded()
        for kind, subject, _ in limits:
            rate.record(session, kind, subject)
    if overall + 1 >= settings.registrations_per_hour and not rate.count(session, _ALERT):
        # Once an hour at most: the alert itself must not become a flood.
        rate.record(session, _ALERT, None)
        audit.append(
            session,
            db,
            REGISTRATION_ALERT,
            actor_username="(self-registration)",
            details={"last_hour": overall + 1, "per_hour": settings.registrations_per_hour},
        )


def registration_alerts(db: Database, admin: Actor) -> list[datetime]:
    """When self-registrations reached the overall hourly number in the last day, newest first.

    Not audited: it reads only the alert events, and the admin page asks on every run.

    Raises:
        policy.AccessDenied: ``admin`` is not an active admin.
    """
    since = (schema.utcnow() - timedelta(days=1)).isoformat(timespec="microseconds")
    event = schema.AuditEvent
    with db.transaction() as session:
        policy.require_admin(session, admin)
        stamps = session.exec(
            select(event.ts)
            .where(event.action == REGISTRATION_ALERT)
            .where(event.ts >= since)
            .order_by(col(event.seq).desc())
        ).all()
    return [datetime.fromisoformat(ts) for ts in stamps]


def operator_create_user(db: Database, username: str, password: str, role: str) -> Actor:
    """Create an account of any role from the command line (whoever runs it holds the keys).

    Raises:
        AccountError: The username is malformed or taken, or the role unknown.
        PasswordPolicyError: The password is refused.
    """
    name = normalize_username(username)
    _validate_new_account(name, role, password)
    password_hash = passwords.hash_password(password)
    with db.transaction() as session:
        actor = _create_user(session, db, name, role, password_hash, must_change=False)
        audit.append(
            session,
            db,
            "register",
            actor_username="(command line)",
            record_type="users",
            record_id=actor.user_id,
            details={"username": name, "role": role, "via": "cli"},
        )
    return actor


def find_actor(db: Database, username: str) -> Actor:
    """The actor of an existing, active account (command-line tools acting for a user).

    Raises:
        AccountError: No active user has that name.
    """
    with db.transaction() as session:
        user = _get_user(session, username)
        if not user.is_active:
            raise AccountError("This account is disabled.")
        return Actor(schema.stored_id(user.id), user.username, user.role)


def authenticate(
    db: Database,
    username: str,
    password: str,
    client_id: str | None,
    *,
    device: str | None = None,
) -> Actor:
    """Check a password login, with progressive delays per account, client and network.

    Unknown users, wrong passwords and disabled accounts get the same message and the same
    argon2 work, and unknown usernames are delayed like real ones, so the answer does not
    reveal which usernames exist. An attempt that comes before its delay is over (see
    :mod:`storage.login_delay`) is refused at once, with the time to try again; no account is
    ever locked, and a browser the account logged in from before is counted apart from every
    other client, so the owner there is not held up by a guesser.

    Args:
        db: Database handle.
        username: Name typed by the user.
        password: Password typed by the user.
        client_id: The client's address as trusted by :func:`core.clients.client_address`,
            or ``None`` when unknown.
        device: The browser's pre-login value (:data:`session_cookie.BINDING_COOKIE_NAME`),
            or ``None`` when it has none.

    Returns:
        The logged-in actor.

    Raises:
        AuthError: The login failed for any reason (generic message, with when to try again
            once a delay applies).
    """
    name = normalize_username(username)[:64]
    with db.transaction() as session:
        counts = login_delay.counts_for(session, name, client_id, device)
        wait_until = login_delay.not_before(session, counts)
        if wait_until is not None:
            # Refused before any password work: the delay is what slows the guesser. Counted,
            # and audited as a number with the next attempt that is heard.
            login_delay.record_refusal(session, counts)
            ok = False
        else:
            refused = login_delay.take_refusals(session, counts)
            user = session.exec(select(schema.User).where(schema.User.username == name)).first()
            # Verify even for unknown users so every failure costs the same time.
            matches = passwords.verify_password(user.password_hash if user else None, password)
            ok = matches and user is not None and user.is_active
            if not ok:
                wait_until = login_delay.record_failure(session, counts)
                reason = "bad_credentials" if user is None or not matches else "disabled"
                details: dict[str, object] = {"reason": reason, "client": client_id or "unknown"}
                if refused:
                    details["refused_while_delayed"] = refused
                audit.append(session, db, "login_failed", actor_username=name, details=details)
        if ok:
            # ``ok`` implies a known user whose stored hash matched the password.
            assert user is not None and user.password_hash is not None
            login_delay.record_success(session, name, counts, device)
            if passwords.needs_rehash(user.password_hash):
                user.password_hash = passwords.hash_password(password)
                session.add(user)
            actor = Actor(schema.stored_id(user.id), user.username, user.role)
            _audit_login(session, db, actor, user.must_change_password, client_id, refused)
    if not ok:
        raise AuthError(_login_failed_message(wait_until))
    return actor


def _login_failed_message(wait_until: datetime | None) -> str:
    """The generic sentence, saying when to try again once a delay applies."""
    if wait_until is None:
        return GENERIC_LOGIN_ERROR
    seconds = max(1, math.ceil((wait_until - schema.utcnow()).total_seconds()))
    wait = f"{seconds} second{'s' if seconds != 1 else ''}"
    if seconds > 90:
        wait = f"{math.ceil(seconds / 60)} minutes"
    return f"Login failed: wrong username or password, or too many attempts; try again in {wait}."


def admin_clear_throttle(db: Database, admin: Actor, username: str) -> int:
    """Lift every login delay of an account at once (audited).

    Delays never lock the owner out, but an owner who mistyped many times on their own
    client would otherwise wait; an admin can let them try again now.

    Returns:
        How many (account, client) and known-browser counts were lifted.

    Raises:
        policy.AccessDenied: ``admin`` is not an active admin.
        AccountError: No such user.
    """
    with db.transaction() as session:
        policy.require_admin(session, admin)
        user = _get_user(session, username)
        cleared = login_delay.clear_account(session, user.username)
        audit.append(
            session,
            db,
            "clear_login_delay",
            actor=admin,
            record_type="users",
            record_id=user.id,
            details={"username": user.username, "cleared": cleared},
        )
    return cleared


def _audit_login(
    session: Session,
    db: Database,
    actor: Actor,
    pending_change: bool,
    client_id: str | None,
    refused: int,
) -> None:
    details: dict[str, object] = {"method": "password"}
    if refused:
        details["refused_while_delayed"] = refused
    if pending_change:
        # A login with a reset (temporary) password may be the admin who saw it: it goes into
        # the user's own access list, with where it came from (see storage.access_log).
        details |= {"pending_password_change": True, "client": client_id or "unknown"}
    audit.append(
        session,
        db,
        "login",
        actor=actor,
        patient_id=actor.user_id if pending_change else None,
        details=details,
    )


def logout(db: Database, actor: Actor, token: str | None, *, everywhere: bool = False) -> None:
    """End the browser's session, or every session of the user, and record it.

    Args:
        db: Database handle.
        actor: Who logs out (a disabled account may still log out).
        token: The browser's session token, or ``None`` when it has none.
        everywhere: End every session of the user, on every device.
    """
    with db.transaction() as session:
        if everywhere:
            ended = sessions.end_user_sessions(session, actor.user_id, sessions.LOGOUT_EVERYWHERE)
        elif token is not None:
            ended = sessions.end_token_session(session, actor.user_id, token, sessions.LOGOUT)
        else:
            ended = 0
        audit.append(
            session,
            db,
            "logout",
            actor=actor,
            details={"everywhere": everywhere, "sessions_ended": ended},
        )


def change_password(
    db: Database, actor: Actor, old: str, new: str, *, keep_token: str | None = None
) -> None:
    """Change one's own password after confirming the current one.

    Every other session of the user ends with the change (someone who knew the old password
    is logged out); the browser that made the change keeps its session.

    Args:
        db: Database handle.
        actor: The user.
        old: Their current password.
        new: The new password.
        keep_token: The session token of the browser making the change.

    Raises:
        AuthError: The current password is wrong.
        PasswordPolicyError: The new password is refused or equals the old one.
    """
    passwords.check_policy(new, actor.username)
    if new == old:
        raise PasswordPolicyError("Choose a new password that differs from the current one.")
    with db.transaction() as session:
        policy.ensure_active(session, actor, password_change_allowed=True)
        user = session.get_one(schema.User, actor.user_id)
        current_ok = passwords.verify_password(user.password_hash, old)
        ended = 0
        if current_ok:
            user.password_hash = passwords.hash_password(new)
            user.must_change_password = False
            session.add(user)
            ended = sessions.end_user_sessions(
                session, actor.user_id, sessions.PASSWORD_CHANGED, except_token=keep_token
            )
        audit.append(
            session,
            db,
            "change_password" if current_ok else "change_password_failed",
            actor=actor,
            record_type="users",
            record_id=actor.user_id,
            details={"sessions_ended": ended} if current_ok else None,
        )
    if not current_ok:
        raise AuthError("Your current password is not correct.")


def admin_reset_password(db: Database, admin: Actor, username: str) -> str:
    """Give a user a random temporary password they must change at next login.

    Every open session of the user ends with the reset. The admin sees the temporary
    password, so it opens nothing unseen: until the password is changed every storage call
    for the account except the change is refused (see :func:`policy.ensure_active`); and the
    reset, the first login after it (with the client address) and every record read in that
    session are listed in the user's own access list (:func:`access_log.access_log`), and
    summarised to them in one sentence (:func:`access_log.reset_notices`).

    Returns:
        The temporary password, to hand to the user out of band.

    Raises:
        policy.AccessDenied: ``admin`` is not an active admin.
        AccountError: No such user.
    """
    temporary = secrets.token_urlsafe(12)
    password_hash = passwords.hash_password(temporary)
    with db.transaction() as session:
        policy.require_admin(session, admin)
        user = _get_user(session, username)
        user.password_hash = password_hash
        user.must_change_password = True
        session.add(user)
        ended = sessions.end_user_sessions(
            session, schema.stored_id(user.id), sessions.PASSWORD_RESET
        )
        audit.append(
            session,
            db,
            "admin_reset_password",
            actor=admin,
            patient_id=user.id,
            record_type="users",
            record_id=user.id,
            details={"username": user.username, "sessions_ended": ended},
        )
    return temporary


def set_disabled(db: Database, admin: Actor, username: str, flag: bool) -> None:
    """Disable (``flag=True``) or re-enable an account; its sessions end with the disabling.

    Raises:
        policy.AccessDenied: ``admin`` is not an active admin, or disables themselves.
        AccountError: No such user.
    """
    with db.transaction() as session:
        policy.require_admin(session, admin)
        user = _get_user(session, username)
        if user.id == admin.user_id and flag:
            raise policy.AccessDenied("You cannot disable your own account.")
        user.is_active = not flag
        session.add(user)
        details: dict[str, object] = {"username": user.username}
        if flag:
            details["sessions_ended"] = sessions.end_user_sessions(
                session, schema.stored_id(user.id), sessions.DISABLED
            )
        audit.append(
            session,
            db,
            "disable_user" if flag else "enable_user",
            actor=admin,
            record_type="users",
            record_id=user.id,
            details=details,
        )


def list_users(db: Database, admin: Actor) -> list[UserInfo]:
    """Every account (admins only; audited).

    Raises:
        policy.AccessDenied: ``admin`` is not an active admin.
    """
    with db.transaction() as session:
        policy.require_admin(session, admin)
        users = session.exec(select(schema.User).order_by(schema.User.username)).all()
        audit.append(session, db, "list_users", actor=admin, details={"count": len(users)})
        return [
            UserInfo(
                schema.stored_id(u.id),
                u.username,
                u.role,
                u.is_active,
                u.must_change_password,
                u.created_at,
            )
            for u in users
        ]


def is_active(db: Database, actor: Actor) -> bool:
    """Whether the account still exists, is enabled and still has the actor's role."""
    with db.transaction() as session:
        user = session.get(schema.User, actor.user_id)
        return user is not None and user.is_active and user.role == actor.role


def must_change_password(db: Database, actor: Actor) -> bool:
    """Whether the user must choose a new password before anything else."""
    with db.transaction() as session:
        user = session.get(schema.User, actor.user_id)
        return bool(user and user.must_change_password)


def oidc_login(db: Database, subject: str, preferred_username: str | None) -> Actor:
    """Map a single sign-on identity to a local account, creating a patient on first login.

    Args:
        db: Database handle.
        subject: Stable identity from the provider (``iss`` + ``sub``).
        preferred_username: Name or e-mail suggested by the provider.

    Returns:
        The local actor.

    Raises:
        AuthError: The mapped account is disabled.
    """
    with db.transaction() as session:
        user = session.exec(select(schema.User).where(schema.User.oidc_subject == subject)).first()
        if user is None:
            name = _free_username(session, preferred_username or "user")
            actor = _create_user(session, db, name, schema.Role.PATIENT.value, None, False)
            user = session.get_one(schema.User, actor.user_id)
            user.oidc_subject = subject
            session.add(user)
            audit.append(session, db, "register", actor=actor, details={"method": "oidc"})
        active = user.is_active
        actor = Actor(schema.stored_id(user.id), user.username, user.role)
        if active:
            audit.append(session, db, "login", actor=actor, details={"method": "oidc"})
        else:
            audit.append(
                session,
                db,
                "login_failed",
                actor_username=user.username,
                details={"reason": "disabled", "method": "oidc"},
            )
    if not active:
        raise AuthError(GENERIC_LOGIN_ERROR)
    return actor


def bootstrap_admin(db: Database) -> None:
    """Create the first admin when the database has none.

    Uses ``ADMIN_USERNAME``/``ADMIN_PASSWORD``; without a password, a one-time password is
    generated, logged once, and must be changed at first login.
    """
    with db.transaction() as session:
        exists = session.exec(
            select(schema.User.id).where(schema.User.role == schema.Role.ADMIN.value)
        ).first()
        if exists is not None:
            return
        settings = db.settings
        password = settings.admin_password
        one_time = password is None
        if password is None:
            password = secrets.token_urlsafe(12)
        name = normalize_username(settings.admin_username)
        actor = _create_user(
            session, db, name, schema.Role.ADMIN.value, passwords.hash_password(password), one_time
        )
        audit.append(
            session,
            db,
            "bootstrap_admin",
            actor=actor,
            record_type="users",
            record_id=actor.user_id,
            details={"one_time_password": one_time},
        )
    if one_time:
        # A block of its own, so that it stands out in the server's terminal.
        rule = "=" * 64
        _LOG.warning(
            "\n%s\nCreated the first admin account.\n  username: %s\n"
            "  one-time password: %s\nLog in with it and choose a new password at once.\n%s",
            rule,
            name,
            password,
            rule,
        )


def _validate_new_account(name: str, role: str, password: str) -> None:
    if role not in {r.value for r in schema.Role}:
        raise AccountError(f"Unknown role {role!r}.")
    if not _USERNAME.match(name):
        raise AccountError(
            "Choose a username of 3 to 64 letters, digits or the characters _ . @ -."
        )
    passwords.check_policy(password, name)


def _create_user(
    session: Session,
    db: Database,
    name: str,
    role: str,
    password_hash: str | None,
    must_change: bool,
) -> Actor:
    taken = session.exec(select(schema.User.id).where(schema.User.username == name)).first()
    if taken is not None:
        raise AccountError("This username is not available; choose another one.")
    user = schema.User(
        username=name, role=role, password_hash=password_hash, must_change_password=must_change
    )
    session.add(user)
    session.flush()
    user_id = schema.stored_id(user.id)
    db.keyring.create_data_key(session, user_id)
    return Actor(user_id, user.username, user.role)


def _get_user(session: Session, username: str) -> schema.User:
    user = session.exec(
        select(schema.User).where(schema.User.username == normalize_username(username))
    ).first()
    if user is None:
        raise AccountError("No such user.")
    return user


def _free_username(session: Session, suggestion: str) -> str:
    base = re.sub(r"[^a-z0-9_.@-]", "", suggestion.lower())[:56] or "user"
    base = base if len(base) >= 3 else f"user-{base}"
    name, n = base, 1
    while session.exec(select(schema.User.id).where(schema.User.username == name)).first():
        n += 1
        name = f"{base}-{n}"
    return name
