"""Accounts: logging in, registering, changing a password, logging out, single sign-on, and
the administrator's account actions.

The rules (password policy, login delays, registration limits, who may do what, the audit)
live in ``storage.accounts``; entry points call them through this module.
"""

from __future__ import annotations

from storage.accounts import (
    AccountError,
    AuthError,
    UserInfo,
    admin_clear_throttle,
    admin_reset_password,
    authenticate,
    change_password,
    list_users,
    logout,
    must_change_password,
    oidc_login,
    register,
    registration_alerts,
    set_disabled,
)
from storage.actor import Actor
from storage.db import Database
from storage.passwords import PasswordPolicyError
from storage.profile import set_birth_year

__all__ = [
    "AccountError",
    "AuthError",
    "PasswordPolicyError",
    "UserInfo",
    "admin_clear_throttle",
    "admin_reset_password",
    "authenticate",
    "change_password",
    "list_users",
    "logout",
    "must_change_password",
    "oidc_login",
    "register",
    "register_patient",
    "registration_alerts",
    "set_disabled",
]


def register_patient(
    db: Database,
    username: str,
    password: str,
    *,
    client_id: str | None,
    birth_year: int | None = None,
) -> Actor:
    """Create a patient account from the sign-up form, with its birth year when given.

    Args:
        db: Database handle.
        username: The chosen username.
        password: The chosen password.
        client_id: The browser's address, for the sign-up limits.
        birth_year: The patient's birth year, or None (it can be set later).

    Returns:
        The new patient.

    Raises:
        storage.accounts.AccountError: The name is taken or not allowed.
        storage.passwords.PasswordPolicyError: The password is refused.
        storage.accounts.RegistrationRateExceeded: Too many sign-ups from this network.
    """
    actor = register(db, username, password, client_id=client_id)
    if birth_year is not None:
        set_birth_year(db, actor, birth_year)
    return actor
