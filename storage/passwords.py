"""Password hashing (argon2id, OWASP parameters) and the password policy."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.errors import UserError
from core.settings import argon2_profile

MIN_LENGTH = 8
MAX_LENGTH = 256

#: OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, type=Type.ID)

#: argon2id at its smallest cost (t=1, 8 KiB), for test suites only (``ARGON2_PROFILE=test``,
#: refused outside local use): a hash takes 0.1 ms instead of 70 ms, and one made with it is
#: upgraded at its next login under the production profile.
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=32, type=Type.ID)

_PROFILES = {"production": HASHER, "test": TEST_HASHER}

#: The most common passwords of public breach lists (lower-case); refused outright.
_COMMON = frozenset(
    """
    123456 password 12345678 qwerty 123456789 12345 1234 111111 1234567 dragon 123123 baseball
    abc123 football monkey letmein 696969 shadow master 666666 qwertyuiop 123321 mustang
    1234567890 michael 654321 superman 1qaz2wsx 7777777 121212 000000 qazwsx 123qwe killer
    trustno1 jordan jennifer zxcvbnm asdfgh hunter buster soccer harley batman andrew tigger
    sunshine iloveyou 2000 charlie robert thomas hockey ranger daniel starwars klaster 112233
    george computer michelle jessica pepper 1111 zxcvbn 555555 11111111 131313 freedom 777777
    pass maggie 159753 aaaaaa ginger princess joshua cheese amanda summer love ashley nicole
    chelsea biteme matthew access yankees 987654321 dallas austin thunder taylor matrix
    password1 password123 passw0rd p@ssw0rd qwerty123 qwerty1 welcome welcome1 admin admin123
    administrator changeme letmein1 iloveyou1 abcd1234 1q2w3e4r 1q2w3e4r5t 12341234 87654321
    00000000 88888888 99999999 12121212 11223344 abcdefgh asdfghjkl qwertyui football1
    baseball1 sunshine1 princess1 monkey123 dragon123 superman1 whatever secret secret123
    """.split()  # noqa: SIM905 - a word list reads best as plain words
)


class PasswordPolicyError(UserError, ValueError):
    """The chosen password is not acceptable; the message says why in one sentence."""

    code = "password_policy"
    default_message = "This password is not acceptable; choose another one."


def check_policy(password: str, username: str | None = None) -> None:
    """Refuse short, overlong, common or username-equal passwords.

    Args:
        password: Candidate password.
        username: The account name, which the password must not equal.

    Raises:
        PasswordPolicyError: The password is not acceptable.
    """
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"Choose a password of at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"Choose a password of at most {MAX_LENGTH} characters.")
    if password.lower() in _COMMON:
        raise PasswordPolicyError("This password is too common; choose another one.")
    if username and password.lower() == username.lower():
        raise PasswordPolicyError("The password must differ from the username.")


def hasher(env: Mapping[str, str] | None = None) -> PasswordHasher:
    """The argon2id hasher of the configured cost profile (:func:`core.settings.argon2_profile`).

    Args:
        env: Mapping to read instead of ``os.environ`` (tests).

    Returns:
        :data:`HASHER`, or :data:`TEST_HASHER` when a test suite asks for it in local use.

    Raises:
        SettingsError: See :func:`core.settings.argon2_profile`.
    """
    return _PROFILES[argon2_profile(env)]


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` with the current parameters (see :func:`hasher`)."""
    return hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``.

    An account without a usable hash (e.g. single sign-on only) is checked against a dummy
    hash so that the time taken does not reveal that.

    Args:
        stored_hash: The stored argon2 hash, or ``None``.
        password: The candidate password.

    Returns:
        ``True`` when it matches.
    """
    target = stored_hash or dummy_hash()
    try:
        ok = hasher().verify(target, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    """Whether a hash was made with other parameters than the current ones."""
    return hasher().check_needs_rehash(stored_hash)


def dummy_hash() -> str:
    """A hash of a random password, verified for unknown users to equalise timing."""
    return _dummy_hash(hasher())


@lru_cache(maxsize=len(_PROFILES))
def _dummy_hash(chosen: PasswordHasher) -> str:
    # One per profile: an unknown user must cost what a known one costs under it.
    return chosen.hash(secrets.token_urlsafe(16))
