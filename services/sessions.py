"""Login sessions: opening one, checking it on every run, the one-time code that sets its
cookie, and reading the signed cookie back (``storage.sessions``, ``storage.session_cookie``)."""

from __future__ import annotations

from core.settings import Settings
from storage.session_cookie import BINDING_COOKIE_NAME, COOKIE_NAME
from storage.session_cookie import unsign as _unsign
from storage.sessions import SessionEnded, check_session, issue_cookie_code, start_session

__all__ = [
    "BINDING_COOKIE_NAME",
    "COOKIE_NAME",
    "SessionEnded",
    "check_session",
    "issue_cookie_code",
    "start_session",
    "token_from_cookie",
]


def token_from_cookie(settings: Settings, value: str | None) -> str | None:
    """The session token a session cookie carries, or None when it is missing or forged."""
    return _unsign(settings, value)
