"""Shared UI helpers: cached handles, the logged-in actor, session expiry, messages."""

from __future__ import annotations

import ast
import gc
import importlib
import io
import json
import logging
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.clients import client_address
from core.errors import UserError
from core.findings import DISCLAIMER
from core.settings import load_settings
from services import access_log, accounts, emergency, sessions
from services.handles import Actor, Database, open_database
from services.handles import load_classifier as _load_classifier

if TYPE_CHECKING:
    from services.handles import Classifier

_LOG = logging.getLogger(__name__)

#: This browser session's token (also in the session cookie once the browser has it).
_TOKEN_KEY = "session_token"
#: A one-time code waiting to be traded for the session cookie (see :func:`cookie_requests`).
_COOKIE_CODE_KEY = "session_cookie_code"
#: Set after a logout: the browser should drop its session cookie.
_COOKIE_END_KEY = "session_cookie_end"
#: A cookie token already found ended, so it is not checked again on every run.
_DEAD_TOKEN_KEY = "session_dead_token"
#: Why the session ended, until a page has shown it.
_NOTICE_KEY = "session_notice"
#: The page asked for before logging in, to return to afterwards.
_WANTED_PATH_KEY = "wanted_path"
#: The page this browser is on and its viewing id (see :func:`viewing`).
_VIEWING_KEY = "viewing"
#: Whether this process serves the cookie routes (see :func:`serve_cookie_routes`).
_cookie_routes = False

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
    return _load_classifier(threads=load_settings().inference_threads)


def warm_up() -> None:
    """Pay the process's one-time costs at server start instead of in the first visitor's run.

    Imports every module the pages import (torch, scikit-image, pydicom, plotly, pandas and the
    project's layers), fills the cached :func:`load_classifier`, and takes one synthetic image
    through each step of an upload (decode, enhance, classify, Grad-CAM, overlay, chart), which
    initialises the lazily set-up CPU kernels. Then freezes the garbage collector's view of
    everything loaded so far, which makes the collection Streamlit runs after each page cheap.
    Opens no database. Never raises: a failure is logged and only means the first visitor
    waits; a missing model is left to the pages, which say so.
    """
    started = time.perf_counter()
    for name in sorted(_page_imports()):
        try:
            importlib.import_module(name)
        except Exception:
            _LOG.exception("warm-up: importing %s failed", name)
    # Outside a page run, the cached loader's spinner has no page and Streamlit warns "missing
    # ScriptRunContext"; expected here, and it would clutter the server's start-up lines.
    context_log = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")
    level = context_log.level
    context_log.setLevel(logging.ERROR)
    try:
        _warm_upload_steps()
    except Exception:
        _LOG.exception("warm-up: the first analysis will pay the start-up costs instead")
    finally:
        context_log.setLevel(level)
    # Streamlit runs a full garbage collection after every script run (runner.postScriptGC),
    # and with torch, pandas and plotly loaded that alone took 0.3-0.7 s per page. What exists
    # now lives as long as the process, so it is moved out of the collector's sight; later
    # objects are collected as before.
    gc.collect()
    gc.freeze()
    _LOG.info("warm-up done in %.1f s", time.perf_counter() - started)


def _page_imports() -> set[str]:
    """The modules the pages import (read from their source), outside ``pages`` itself."""
    # Imported on first use: by Streamlit for the first table, by pandas for the first
    # styled one (with jinja2).
    names: set[str] = {"pyarrow", "pandas.io.formats.style"}
    for path in Path(__file__).resolve().parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return {name for name in names if name.split(".")[0] not in ("pages", "__future__")}


def _warm_upload_steps() -> None:
    from core.enhance import enhance
    from core.findings import FINDINGS
    from core.imaging import decode_scan
    from core.overlay import overlay_heatmap
    from core.results import probability_figure

    Image.init()  # Pillow loads its rarer format plugins on the first file it cannot place.
    # A 1024x1024 PNG ramp: the size of a typical upload, not flat (CLAHE skips flat images).
    ramp = np.tile(np.linspace(0, 255, 1024, dtype=np.uint8), (1024, 1))
    buffer = io.BytesIO()
    Image.fromarray(ramp).save(buffer, format="PNG")
    scan = decode_scan(buffer.getvalue())
    enhance(scan.pixels)
    try:
        classifier = load_classifier()
    except UserError as err:
        _LOG.warning("warm-up: %s", err)
        return
    prediction = classifier.predict([scan])[0]
    heat = classifier.heatmap(scan, FINDINGS[0])
    overlay_heatmap(scan.pixels, heat)
    probability_figure(prediction.probabilities, prediction.thresholds).to_json()


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
    """The browser's address for login delays and sign-up limits (see :mod:`core.clients`).

    ``X-Forwarded-For`` counts only when the direct peer is one of ``TRUSTED_PROXIES``.
    """
    try:
        peer = st.context.ip_address
        forwarded = st.context.headers.get("X-Forwarded-For")
    except Exception:  # no request context (tests, bare mode)
        return None
    # Without a real request (AppTest) these are stand-ins, not addresses.
    return client_address(
        peer if isinstance(peer, str) else None,
        forwarded if isinstance(forwarded, str) else None,
        get_database().settings.trusted_proxies,
    )


def start_session(actor: Actor) -> None:
    """Open a server-side session for a user who just logged in, and have the browser keep it.

    The token is kept in this browser session at once; the login page then sends the browser
    to the cookie route (:func:`cookie_requests`) so that reloads and new tabs keep it too.
    """
    db = get_database()
    token = sessions.start_session(db, actor, client_id())
    st.session_state[_TOKEN_KEY] = token
    st.session_state.pop(_DEAD_TOKEN_KEY, None)
    st.session_state.pop(_NOTICE_KEY, None)
    binding = browser_binding()
    # Without its pre-login value (no cookie routes, cookies refused) the browser could not
    # redeem a code: the login then lasts as long as its tab.
    if binding is not None:
        st.session_state[_COOKIE_CODE_KEY] = sessions.issue_cookie_code(db, token, binding)


def browser_binding() -> str | None:
    """This browser's pre-login value (set by ``server.py`` before any login), or ``None``.

    One-time cookie codes are bound to it, and login delays know the owner's browser by it.
    """
    try:
        value = st.context.cookies.get(sessions.BINDING_COOKIE_NAME)
    except Exception:  # no request context (tests, bare mode)
        return None
    return value if isinstance(value, str) and value else None


def end_session(*, everywhere: bool = False) -> None:
    """Log out: end the session in the database (audited), forget it here, drop the cookie.

    Every tab of this browser shares the session, so each is logged out at its next action;
    ``everywhere`` also ends the user's sessions on other devices.
    """
    token = session_token()
    actor = current_actor()
    if actor is not None:
        accounts.logout(get_database(), actor, token, everywhere=everywhere)
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if token is not None:
        st.session_state[_DEAD_TOKEN_KEY] = token
    st.session_state[_COOKIE_END_KEY] = True
    if _oidc_configured() and st.user.is_logged_in:
        st.logout()


def current_actor() -> Actor | None:
    """The user of this browser's open session, or ``None``.

    The session is looked up in the database on every call (so a logout, password change,
    reset or disabling elsewhere counts at once); when it has ended, why is kept for the page
    to show (:func:`take_session_notice`).
    """
    token = session_token()
    if token is not None:
        try:
            return sessions.check_session(get_database(), token)
        except sessions.SessionEnded as ended:
            st.session_state.pop(_TOKEN_KEY, None)
            st.session_state[_DEAD_TOKEN_KEY] = token
            if ended.reason is not None:
                st.session_state[_NOTICE_KEY] = str(ended)
        except UserError as err:
            # The session could not be checked or its end recorded (a broken audit trail, say):
            # fail closed, logged out for this run, and say why.
            st.session_state[_NOTICE_KEY] = str(err)
            return None
    if _oidc_configured() and st.user.is_logged_in:
        return _actor_from_oidc()
    return None


def viewing() -> str:
    """This page visit's viewing id, for auditing its reads once rather than at every rerun.

    Streamlit reruns the page on every widget change; the id stays the same across those
    reruns and is new when this browser session opens another page (the router, Home and
    :func:`require_actor` call this on every run, so a visit to any page ends the viewing of
    the page before) or the page anew (a reload is a new browser session). Storage audits a
    read once per viewing, patient and record (``storage.audit.append_read``) and checks the
    access policy at every call.
    """
    page = _page_key()
    held = st.session_state.get(_VIEWING_KEY)
    if not (isinstance(held, tuple) and len(held) == 2 and held[0] == page):
        held = (page, secrets.token_urlsafe(16))
        st.session_state[_VIEWING_KEY] = held
    return str(held[1])


def _page_key() -> str:
    """The page being run: its script hash under ``st.navigation`` (else its URL path)."""
    ctx = get_script_run_ctx()
    if ctx is not None and ctx.page_script_hash:
        return str(ctx.page_script_hash)
    return _current_path()


def take_session_notice() -> str | None:
    """Why this browser's session ended, once (the first page to ask shows it)."""
    notice = st.session_state.pop(_NOTICE_KEY, None)
    return str(notice) if notice else None


def remember_wanted_page() -> str | None:
    """Note the page a logged-out visitor asked for (a deep link), to return after login.

    Returns:
        Its URL path name (``"history"``), or ``None`` at the home or login page.
    """
    path = _current_path()
    if path in {"/", "/login"}:
        return None
    st.session_state.setdefault(_WANTED_PATH_KEY, path)
    return path.strip("/")


def serve_cookie_routes() -> None:
    """Declare that this process serves the session-cookie routes (called by ``server.py``)."""
    global _cookie_routes
    _cookie_routes = True


def cookie_requests() -> bool:
    """Send the browser to the cookie route when its session cookie must be set or dropped.

    A page script cannot set an HttpOnly cookie, so the browser goes to the server's
    ``/session/cookie`` route (``server.py``) with a one-time code, and comes back to the page
    with the cookie; after a logout, ``/session/end`` drops it. The code is useless once
    traded, and expires within a minute. Without the routes (``streamlit run
    streamlit_app.py``) nothing is sent and a login lasts as long as its tab.

    Returns:
        Whether the browser is being sent away (the page need not draw more).
    """
    code = st.session_state.pop(_COOKIE_CODE_KEY, None)
    ending = st.session_state.pop(_COOKIE_END_KEY, False)
    if not _cookie_routes:
        return False
    if code is not None:
        wanted = st.session_state.pop(_WANTED_PATH_KEY, None) or _current_path()
        if wanted == "/login":
            wanted = "/"  # the login page has done its work: land on the first page
        _go_to(f"/session/cookie?{urlencode({'code': code, 'next': wanted})}")
        return True
    if ending:
        _go_to("/session/end?next=/")
        return True
    return False


def session_token() -> str | None:
    """This browser's session token (kept here, or from its session cookie), or ``None``."""
    token = st.session_state.get(_TOKEN_KEY)
    if token is None:
        try:
            cookie = st.context.cookies.get(sessions.COOKIE_NAME)
        except Exception:  # no request context (tests, bare mode)
            cookie = None
        token = sessions.token_from_cookie(
            get_database().settings, cookie if isinstance(cookie, str) else None
        )
    if token is not None and token == st.session_state.get(_DEAD_TOKEN_KEY):
        return None
    return token


def _current_path() -> str:
    try:
        url = st.context.url
    except Exception:  # no request context (tests, bare mode)
        url = None
    return (urlsplit(url).path or "/") if isinstance(url, str) else "/"


def _go_to(target: str) -> None:
    """Navigate the whole browser tab to a route of this server (no cookie is touched here)."""
    st.html(
        f"<script>window.location.replace({json.dumps(target)});</script>",
        unsafe_allow_javascript=True,
    )
    # A browser that blocks or delays the script still has a way on.
    st.link_button("Continue", target)


def require_actor(*roles: str, allow_password_change: bool = False) -> Actor:
    """The logged-in user, or stop the page with a message.

    Stops when nobody is logged in or the session ended (logout, idle or absolute timeout,
    password change or reset, disabled account: checked in the database on every run, see
    :func:`current_actor`), a password change is pending (except where
    ``allow_password_change``), or the role is not one of ``roles`` (any role if empty).

    Args:
        *roles: Roles allowed on the page.
        allow_password_change: The page is where a pending password change happens.

    Returns:
        The actor.
    """
    actor = current_actor()
    if actor is None:
        notice = take_session_notice()
        if notice:
            st.warning(notice)
        else:
            st.info("Please log in to use this page.")
        st.stop()
    db = get_database()
    if not allow_password_change and accounts.must_change_password(db, actor):
        st.warning("Please choose a new password on the Account page before continuing.")
        st.stop()
    if roles and actor.role not in roles:
        st.error("This page is not available for your account.")
        st.stop()
    show_emergency_reads(actor)
    viewing()  # this page's visit (a visit to any page ends the viewing of the one before)
    return actor


def show_emergency_reads(actor: Actor) -> None:
    """Every emergency read of a patient's records, at the top of whatever page they open
    (:func:`require_actor`, and Home), until they acknowledge it: a deep link to another page
    must not skip it."""
    if actor.role != "patient":
        return
    try:
        reads = emergency.emergency_read_notices(get_database(), actor)
    except access_log.AccessDenied:  # a pending password change: the Account page says so
        return
    for read in reads:
        st.error(read.sentence(browser_zone()), icon=":material/emergency:")
    if reads and st.button("I have read this", key="acknowledge_emergency_reads"):
        emergency.acknowledge_notices(get_database(), actor, reads)
        st.rerun()


def browser_zone() -> str | None:
    """The browser's IANA time zone (``st.context.timezone``), for showing times; ``None``
    when the browser did not say (times are then printed as UTC, named so)."""
    try:
        return st.context.timezone
    except Exception:  # no browser context (AppTest, bare mode)
        return None


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
