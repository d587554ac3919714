"""Accounts: registration, login with throttling, passwords, admin actions, first admin."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from core.errors import UserError
from storage import audit, passwords, policy, rate, schema
from storage.actor import Actor
from storage.db import Database
from storage.passwords import PasswordPolicyError

_LOG = logging.getLogger(__name__)

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{2,63}$")
#: Failures allowed before lockouts start; each further failure doubles the lockout.
MAX_FAILURES = 5
_BASE_LOCK_SECONDS = 30
_MAX_LOCK_SECONDS = 3600
GENERIC_LOGIN_ERROR = (
    "Login failed: wrong username or password, or too many attempts; try again later."
)
#: The rate-event kind of a self-registration (see :mod:`storage.rate`).
_REGISTER = "register"
#: PostgreSQL advisory lock key serialising self-registrations.
_REGISTRATION_LOCK = 424243

__all__ = [
    "AccountError",
    "AuthError",
    "PasswordPolicyError",
    "RegistrationRateExceeded",
    "UserInfo",
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

    Self-registrations are limited per hour, in all (``Settings.registrations_per_hour``)
    and per client (``Settings.registrations_per_client_per_hour``), counted in the database
    so that the limits hold across app processes; accounts created by an admin are not.

    Args:
        db: Database handle.
        username: 3 to 64 characters: letters, digits, ``_ . @ -``.
        password: Must pass :func:`passwords.check_policy`.
        role: ``patient`` for self-registration; other roles need ``by`` to be an admin.
        by: Admin creating the account, or ``None`` for self-registration.
        client_id: Best-effort client identity (IP address) of a self-registration, or
            ``None`` when unknown (only the overall limit then applies).

    Returns:
        The new user as an actor.

    Raises:
        AccountError: The username is malformed or taken, or the role unknown.
        PasswordPolicyError: The password is refused.
        policy.AccessDenied: A non-patient role was requested without an admin.
        RegistrationRateExceeded: Too many self-registrations in the last hour.
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
        actor = _create_user(session, db, name, role, password_hash, must_change=False)
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
    """Refuse a self-registration over the hourly limits, else count it.

    Raises:
        RegistrationRateExceeded: The overall or this client's limit is reached.
    """
    if session.get_bind().dialect.name == "postgresql":
        # Serialises self-registrations (SQLite runs one write transaction at a time anyway),
        # so that concurrent ones cannot all take the last free slot.
        session.exec(select(func.pg_advisory_xact_lock(_REGISTRATION_LOCK))).one()
    client = f"client:{client_id[:150]}" if client_id else None
    settings = db.settings
    if rate.count(session, _REGISTER) >= settings.registrations_per_hour or (
        client is not None
        and rate.count(session, _REGISTER, client) >= settings.registrations_per_client_per_hour
    ):
        raise RegistrationRateExceeded()
    rate.record(session, _REGISTER, client)


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


def authenticate(db: Database, username: str, password: str, client_id: str | None) -> Actor:
    """Check a password login, with lockouts per account name and per client.

    Unknown users, wrong passwords, disabled accounts and throttled attempts all get the
    same message and the same argon2 work, so the answer does not reveal which usernames
    exist.

    Args:
        db: Database handle.
        username: Name typed by the user.
        password: Password typed by the user.
        client_id: Best-effort client identity (IP address), or ``None``.

    Returns:
        The logged-in actor.

    Raises:
        AuthError: The login failed for any reason (generic message).
    """
    name = normalize_username(username)[:64]
    keys = [f"user:{name}"] + ([f"client:{client_id[:150]}"] if client_id else [])
    now = schema.utcnow()
    with db.transaction() as session:
        user = session.exec(select(schema.User).where(schema.User.username == name)).first()
        locked = any(
            row is not None and row.locked_until is not None and row.locked_until > now
            for row in (session.get(schema.LoginThrottle, key) for key in keys)
        )
        # Verify even when locked or unknown so every failure costs the same time.
        matches = passwords.verify_password(user.password_hash if user else None, password)
        ok = matches and not locked and user is not None and user.is_active
        if not ok:
            for key in keys:
                _record_failure(session, key, now)
            if locked:
                reason = "throttled"
            elif user is None or not matches:
                reason = "bad_credentials"
            else:
                reason = "disabled"
            audit.append(
                session,
                db,
                "login_failed",
                actor_username=name,
                details={"reason": reason},
            )
        else:
            # ``ok`` implies a known user whose stored hash matched the password.
            assert user is not None and user.password_hash is not None
            for key in keys:
                row = session.get(schema.LoginThrottle, key)
                if row is not None:
                    session.delete(row)
            if passwords.needs_rehash(user.password_hash):
                user.password_hash = passwords.hash_password(password)
                session.add(user)
            actor = Actor(schema.stored_id(user.id), user.username, user.role)
            audit.append(session, db, "login", actor=actor, details={"method": "password"})
    if not ok:
        raise AuthError(GENERIC_LOGIN_ERROR)
    return actor


def _record_failure(session: Session, key: str, now: datetime) -> None:
    row = session.get(schema.LoginThrottle, key) or schema.LoginThrottle(key=key, failures=0)
    row.failures += 1
    if row.failures >= MAX_FAILURES:
        seconds = min(_BASE_LOCK_SECONDS * 2 ** (row.failures - MAX_FAILURES), _MAX_LOCK_SECONDS)
        row.locked_until = now + timedelta(seconds=seconds)
    session.add(row)


def logout(db: Database, actor: Actor) -> None:
    """Record a logout (the page clears its session state)."""
    with db.transaction() as session:
        audit.append(session, db, "logout", actor=actor)


def change_password(db: Database, actor: Actor, old: str, new: str) -> None:
    """Change one's own password after confirming the current one.

    Raises:
        AuthError: The current password is wrong.
        PasswordPolicyError: The new password is refused or equals the old one.
    """
    passwords.check_policy(new, actor.username)
    if new == old:
        raise PasswordPolicyError("Choose a new password that differs from the current one.")
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        user = session.get_one(schema.User, actor.user_id)
        current_ok = passwords.verify_password(user.password_hash, old)
        if current_ok:
            user.password_hash = passwords.hash_password(new)
            user.must_change_password = False
            session.add(user)
        audit.append(
            session,
            db,
            "change_password" if current_ok else "change_password_failed",
            actor=actor,
            record_type="users",
            record_id=actor.user_id,
        )
    if not current_ok:
        raise AuthError("Your current password is not correct.")


def admin_reset_password(db: Database, admin: Actor, username: str) -> str:
    """Give a user a random temporary password they must change at next login.

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
        audit.append(
            session,
            db,
            "admin_reset_password",
            actor=admin,
            record_type="users",
            record_id=user.id,
            details={"username": user.username},
        )
    return temporary


def set_disabled(db: Database, admin: Actor, username: str, flag: bool) -> None:
    """Disable (``flag=True``) or re-enable an account; effective at the user's next action.

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
        audit.append(
            session,
            db,
            "disable_user" if flag else "enable_user",
            actor=admin,
            record_type="users",
            record_id=user.id,
            details={"username": user.username},
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
        _LOG.warning(
            "Created first admin %r with one-time password %s (must be changed at first login).",
            name,
            password,
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
