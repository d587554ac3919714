"""The web server: ``streamlit run server.py`` serves ``streamlit_app.py`` and the cookie routes.

Streamlit's own ASGI application (``st.App``) runs the app and takes extra HTTP routes. Two of
them set and clear the session cookie, because a page script cannot set an HttpOnly cookie
(``st.context.cookies`` only reads; a cookie set by JavaScript is readable by JavaScript):

- ``/session/cookie?code=...&next=/page``: trades the one-time code a login gave the page
  (:func:`storage.sessions.issue_cookie_code`) for the signed, HttpOnly, SameSite=Strict
  session cookie, then returns the browser to the page. The code works only together with
  the pre-login value of the browser that logged in (login CSRF).
- ``/session/end?next=/``: clears the cookie after a logout (the session itself was already
  ended by the page, in the database); the cookie of a session still open stays (logout CSRF).

Both refuse requests another site started (``Sec-Fetch-Site``, ``Origin``). Every browser gets
its pre-login value (:data:`storage.session_cookie.BINDING_COOKIE_NAME`) from
:class:`BrowserBinding` with the first response it receives, before it can see the login form.

Storage is opened when the server starts, so that a wrong key or database fails at once and
the first admin's one-time password is printed after the server's own start-up lines.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.clients import is_trusted_proxy
from core.settings import load_settings
from pages.ui import get_database, serve_cookie_routes, warm_up
from storage import session_cookie, sessions

_LOG = logging.getLogger(__name__)
#: Pause before the first-admin notice, so that it follows the server's start-up lines.
_NOTICE_DELAY_S = 2.0
#: ``Sec-Fetch-Site`` values of requests this site's own pages (or the user, typing the
#: address) started.
_OWN_SITE = frozenset({"same-origin", "none"})


class BrowserBinding:
    """ASGI middleware giving a browser without one its pre-login value (a random cookie).

    Set on whatever response a browser first receives (the app's own page included), so that
    the login page, which reads cookies through its websocket, finds it before any login.
    """

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding the cookie to an HTTP response when it lacks one."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if session_cookie.BINDING_COOKIE_NAME in connection.cookies:
            await self.app(scope, receive, send)
            return
        cookie = Response()
        cookie.set_cookie(
            session_cookie.BINDING_COOKIE_NAME,
            session_cookie.new_binding(),
            max_age=session_cookie.BINDING_MAX_AGE_S,
            path="/",
            secure=_is_https(connection),
            httponly=True,
            # Lax: a browser arriving from a link keeps its value rather than being given a
            # new one; the value binds codes and is no credential, so another site's request
            # carrying it gains nothing.
            samesite="lax",
        )
        header = cookie.headers["set-cookie"]

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", header)
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def set_session_cookie(request: Request) -> Response:
    """Trade a one-time code for the session cookie and go back to the page.

    Refused when another site started the request; a code issued to another browser (whose
    pre-login value this browser does not hold) sets no cookie.
    """
    if _cross_site(request):
        return _refused()
    db = get_database()
    code = request.query_params.get("code", "")
    binding = request.cookies.get(session_cookie.BINDING_COOKIE_NAME)
    token = (
        await run_in_threadpool(sessions.redeem_cookie_code, db, code, binding) if code else None
    )
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
    """Forget the session cookie of an ended session and go back to the page.

    Refused when another site started the request; the cookie of a session that is still open
    is kept (the page ends the session in the database before it sends the browser here).
    """
    if _cross_site(request):
        return _refused()
    response = _back(request)
    db = get_database()
    token = session_cookie.unsign(db.settings, request.cookies.get(session_cookie.COOKIE_NAME))
    if token is not None and await run_in_threadpool(sessions.session_open, db, token):
        return response
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


def _cross_site(request: Request) -> bool:
    """Whether another site started the request (a link, form or script of theirs).

    A browser says so in ``Sec-Fetch-Site``; one too old for that still names the page's
    origin in ``Origin`` on a cross-site request that carries it, which must be this host.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in _OWN_SITE:
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    hosts = {request.headers.get("host", "").lower()}
    if _from_our_proxy(request):
        hosts.add(request.headers.get("x-forwarded-host", "").lower())
    return origin == "null" or urlsplit(origin).netloc.lower() not in hosts - {""}


def _refused() -> Response:
    response = PlainTextResponse(
        "This address works only from the app's own pages; open the app and try again.",
        status_code=403,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _is_https(connection: HTTPConnection) -> bool:
    if connection.url.scheme == "https":
        return True
    # A TLS-terminating proxy says so; only our own proxy is believed (as for addresses).
    return _from_our_proxy(connection) and connection.headers.get("x-forwarded-proto") == "https"


def _from_our_proxy(connection: HTTPConnection) -> bool:
    peer = connection.client.host if connection.client else None
    # Read from the environment, not the database handle: the middleware runs before
    # storage is open.
    return is_trusted_proxy(peer, load_settings().trusted_proxies)


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
    middleware=[Middleware(BrowserBinding)],
    routes=[
        Route("/session/cookie", set_session_cookie, methods=["GET"]),
        Route("/session/end", clear_session_cookie, methods=["GET"]),
    ],
)
