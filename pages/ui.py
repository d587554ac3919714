"""Shared UI helpers: cached handles, the logged-in actor, session expiry, messages."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import streamlit as st

from core.errors import UserError
from core.findings import DISCLAIMER
from core.settings import load_settings
from storage import accounts
from storage.actor import Actor
from storage.bootstrap import open_database
from storage.db import Database

if TYPE_CHECKING:
    from models.inference import Classifier

_LOG = logging.getLogger(__name__)

_ACTOR_KEY = "actor"
_ACTIVITY_KEY = "last_activity"

#: Shown for any failure that is not one of the project's own errors (whose text is written
#: for users); the details go to the log, never to the page.
GENERIC_ERROR = "Something went wrong; please try again, or contact support if it persists."


@st.cache_resource(show_spinner=False)
def get_database() -> Database:
    """The process-wide database handle (holds no per-user data)."""
    return open_database(load_settings())


@st.cache_resource(show_spinner="Loading the analysis model...")
def load_classifier() -> Classifier:
    """The process-wide classifier.

    Raises:
        models.inference.ModelUnavailable: No usable checkpoint (not cached, retried later).
    """
    # Imported on first use: the model layer loads torch, which pages without a model never need.
    from models.inference import load_classifier as _load

    return _load()


def current_classifier(consequence: str, *, as_error: bool = False) -> Classifier | None:
    """The cached classifier, or ``None`` after telling the user why it is unavailable.

    Args:
        consequence: What still works without the model, one sentence after the reason.
        as_error: Show the message as an error (the page's purpose needs the model) rather
            than as information.

    Returns:
        The classifier, or ``None``.
    """
    try:
        return load_classifier()
    except UserError as err:  # models.inference.ModelUnavailable
        (st.error if as_error else st.info)(f"{err} {consequence}")
        return None


def client_id() -> str | None:
    """Best-effort identity of the browser's machine for login throttling (IP address)."""
    try:
        forwarded = st.context.headers.get("X-Forwarded-For")
        if forwarded:
            return forwarded.split(",")[0].strip()
        return st.context.ip_address
    except Exception:  # no request context (tests, bare mode)
        return None


def start_session(actor: Actor) -> None:
    """Remember a freshly authenticated user in this browser session."""
    st.session_state[_ACTOR_KEY] = actor
    st.session_state[_ACTIVITY_KEY] = time.time()


def end_session() -> None:
    """Log out: audit it, forget the user, and leave single sign-on if used."""
    actor = st.session_state.get(_ACTOR_KEY)
    if actor is not None:
        accounts.logout(get_database(), actor)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if _oidc_configured() and st.user.is_logged_in:
        st.logout()


def current_actor() -> Actor | None:
    """The logged-in user of this session, or ``None``."""
    actor = st.session_state.get(_ACTOR_KEY)
    if actor is None and _oidc_configured() and st.user.is_logged_in:
        actor = _actor_from_oidc()
    return actor


def require_actor(*roles: str, allow_password_change: bool = False) -> Actor:
    """The logged-in user, or stop the page with a message.

    Stops when nobody is logged in, the session was idle too long, the account was disabled
    (checked on every run), a password change is pending (except where
    ``allow_password_change``), or the role is not one of ``roles`` (any role if empty).

    Args:
        *roles: Roles allowed on the page.
        allow_password_change: The page is where a pending password change happens.

    Returns:
        The actor.
    """
    actor = current_actor()
    if actor is None:
        st.info("Please log in to use this page.")
        st.stop()
    timeout_minutes = load_settings().idle_timeout_minutes
    last = st.session_state.get(_ACTIVITY_KEY, time.time())
    if time.time() - last > timeout_minutes * 60:
        end_session()
        st.warning(
            f"You were logged out after {timeout_minutes} minutes without activity. "
            "Please log in again."
        )
        st.stop()
    db = get_database()
    if not accounts.is_active(db, actor):
        end_session()
        st.error("Your account is disabled; please contact an administrator.")
        st.stop()
    if not allow_password_change and accounts.must_change_password(db, actor):
        st.warning("Please choose a new password on the Account page before continuing.")
        st.stop()
    if roles and actor.role not in roles:
        st.error("This page is not available for your account.")
        st.stop()
    st.session_state[_ACTIVITY_KEY] = time.time()
    return actor


def show_disclaimer() -> None:
    """The decision-support notice, shown wherever results appear."""
    st.info(DISCLAIMER, icon=":material/medical_information:")


def show_error(err: BaseException) -> None:
    """Show an error as one plain sentence, never a traceback.

    Args:
        err: The exception. The message of a ``core.errors.UserError`` is written for users and
            shown; anything else (a library's ``ValueError``, say) is logged with its
            traceback and replaced by :data:`GENERIC_ERROR`.
    """
    if isinstance(err, UserError) and str(err):
        st.error(str(err))
        return
    _LOG.error("unexpected error", exc_info=err)
    st.error(GENERIC_ERROR)


def oidc_available() -> bool:
    """Whether single sign-on is configured (``[auth]`` in secrets)."""
    return _oidc_configured()


def _oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def _actor_from_oidc() -> Actor | None:
    subject = st.user.get("sub")
    if not subject:
        return None
    issuer = st.user.get("iss") or ""
    suggested = st.user.get("email") or st.user.get("name")
    try:
        actor = accounts.oidc_login(get_database(), f"{issuer}|{subject}", suggested)
    except accounts.AuthError as err:
        st.error(str(err))
        return None
    start_session(actor)
    return actor
