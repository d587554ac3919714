"""The web server: ``streamlit run server.py`` serves ``streamlit_app.py`` and the cookie routes.

Streamlit's own ASGI application (``st.App``) runs the app and takes extra HTTP routes. Two of
them set and clear the session cookie, because a page script cannot set an HttpOnly cookie
(``st.context.cookies`` only reads; a cookie set by JavaScript is readable by JavaScript):

- ``/session/cookie?code=...&next=/page``: trades the one-time code a login gave the page
  (:func:`storage.sessions.issue_cookie_code`) for the signed, HttpOnly, SameSite=Strict
  session cookie, then returns the browser to the page.
- ``/session/end?next=/``: clears the cookie after a logout (the session itself was already
  ended by the page, in the database).

Storage is opened when the server starts, so that a wrong key or database fails at once and
the first admin's one-time password is printed after the server's own start-up lines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.clients import is_trusted_proxy
from pages.ui import get_database, serve_cookie_routes, warm_up
from storage import session_cookie, sessions

_LOG = logging.getLogger(__name__)
#: Pause before the first-admin notice, so that it follows the server's start-up lines.
_NOTICE_DELAY_S = 2.0


async def set_session_cookie(request: Request) -> Response:
    """Trade a one-time code for the session cookie and go back to the page."""
    db = get_database()
    code = request.query_params.get("code", "")
    token = await run_in_threadpool(sessions.redeem_cookie_code, db, code) if code else None
    response = _back(request)
    if token is not None:
        response.set_cookie(
            session_cookie.COOKIE_NAME,
            session_cookie.sign(db.settings, token),
            max_age=db.settings.session_max_hours * 3600,
            path="/",
            secure=_is_https(request),
            httponly=True,
            samesite="strict",
        )
    return response


async def clear_session_cookie(request: Request) -> Response:
    """Forget the session cookie and go back to the page."""
    response = _back(request)
    response.delete_cookie(
        session_cookie.COOKIE_NAME,
        path="/",
        secure=_is_https(request),
        httponly=True,
        samesite="strict",
    )
    return response


def _back(request: Request) -> RedirectResponse:
    """A redirect to ``next`` when it is a path of this site, else to the home page."""
    target = request.query_params.get("next", "/")
    # Only a local path: "//host" or "/\\host" would leave the site (an open redirect).
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        target = "/"
    response = RedirectResponse(target, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _is_https(request: Request) -> bool:
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else None
    # A TLS-terminating proxy says so; only our own proxy is believed (as for addresses).
    return (
        is_trusted_proxy(peer, get_database().settings.trusted_proxies)
        and request.headers.get("x-forwarded-proto") == "https"
    )


@asynccontextmanager
async def _lifespan(_app: Any) -> AsyncIterator[None]:
    # Before serving: the server says it is ready only once the model and the heavy libraries
    # are loaded, so neither the first page nor the first analysis pays for them.
    await run_in_threadpool(warm_up)
    opening = asyncio.create_task(_open_storage())
    yield
    opening.cancel()


async def _open_storage() -> None:
    """Open storage just after start-up, so its one-time admin password is the last line."""
    await asyncio.sleep(_NOTICE_DELAY_S)
    try:
        await run_in_threadpool(get_database)
    except Exception:
        # The app's pages say so to every visitor too; the log says why.
        _LOG.exception("storage could not be opened")


serve_cookie_routes()
app = st.App(
    "streamlit_app.py",
    lifespan=_lifespan,
    routes=[
        Route("/session/cookie", set_session_cookie, methods=["GET"]),
        Route("/session/end", clear_session_cookie, methods=["GET"]),
    ],
)
