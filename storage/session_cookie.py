"""The session cookie's value: the session token, signed with the cookie secret.

The cookie carries nothing but the token of a server-side session (:mod:`storage.sessions`);
the signature lets a forged or altered cookie be refused before any database lookup. The
secret is ``COOKIE_SECRET`` (required outside local use, see :mod:`core.settings`), or on a
developer's machine a random key kept in ``DATA_DIR/cookie.key`` so that every local app
process signs alike.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from itsdangerous import BadSignature, Signer

from core.settings import Settings

#: The cookie's name (``__Host-`` needs HTTPS, which a local run does not have).
COOKIE_NAME = "cxr_session"
#: The browser's pre-login value: a random string every browser is given before it can log
#: in (``server.py``). One-time cookie codes are bound to it (:mod:`storage.sessions`), and a
#: browser an account logged in from is known by it (:mod:`storage.login_delay`).
BINDING_COOKIE_NAME = "cxr_browser"
#: How long a browser keeps its pre-login value: a year, so that it stays known.
BINDING_MAX_AGE_S = 365 * 24 * 3600
_SALT = "cxr-tracker session cookie"


def new_binding() -> str:
    """A fresh pre-login value for a browser that has none."""
    return secrets.token_urlsafe(32)


def sign(settings: Settings, token: str) -> str:
    """The cookie value for a session token."""
    return _signer(_secret(settings)).sign(token).decode()


def unsign(settings: Settings, value: str | None) -> str | None:
    """The session token in a cookie value, or ``None`` when it is absent or not ours."""
    if not value:
        return None
    try:
        return _signer(_secret(settings)).unsign(value).decode()
    except BadSignature:
        return None


def _secret(settings: Settings) -> str:
    if settings.cookie_secret is not None:
        return settings.cookie_secret
    return _local_secret(settings.cookie_key_file)


@lru_cache(maxsize=4)
def _local_secret(path: Path) -> str:
    """The local cookie key, created once (owner-only) by whichever process comes first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written aside and linked into place: another process never reads a half-written key.
        staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
        try:
            os.link(staging, path)
        except FileExistsError:
            pass  # another process was first; its key is the one every process uses
        finally:
            staging.unlink()
    return path.read_text().strip()


@lru_cache(maxsize=4)
def _signer(secret: str) -> Signer:
    return Signer(secret, salt=_SALT)
