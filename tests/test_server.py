"""The session-cookie routes of ``server.py``, called as ASGI handlers (no browser, no server)."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import pytest
from starlette.requests import Request
from starlette.responses import Response

from pages import ui
from storage import accounts, session_cookie, sessions
from storage.db import Database
from tests.pages._flows import open_database

PROXY = "10.0.0.2"
#: The logging-in browser's pre-login value, as its cookie header.
BROWSER = "the-browser-that-logged-in"
BOUND = f"{session_cookie.BINDING_COOKIE_NAME}={BROWSER}"


@pytest.fixture
def db(tmp_path, monkeypatch) -> Iterator[Database]:
    monkeypatch.setenv("TRUSTED_PROXIES", PROXY)
    database = open_database(tmp_path, monkeypatch)
    yield database
    database.close()
    ui.get_database.clear()


@pytest.fixture
def server(monkeypatch) -> ModuleType:
    # Importing the server declares the cookie routes for this process; page tests run
    # without them, so the flag goes back afterwards.
    monkeypatch.setattr(ui, "_cookie_routes", ui._cookie_routes)
    return importlib.import_module("server")


def _scope(path: str, query: str, peer: str, headers: dict[str, str]) -> dict:
    return {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        "client": (peer, 50000),
        "server": ("127.0.0.1", 8501),
    }


def _call(handler, path: str, query: str = "", *, peer: str = "127.0.0.1", **headers) -> Response:
    """Run a route's handler; headers are keyword arguments (``sec_fetch_site=...``)."""
    headers = {"host": "127.0.0.1:8501", "sec_fetch_site": "same-origin", **headers}
    scope = _scope(path, query, peer, headers)
    # A fresh event loop in its own thread: a browser test earlier in the same run may leave
    # one running in this thread, where asyncio.run refuses to start another.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, handler(Request(scope))).result()


def _cookie_header(response: Response) -> str:
    return "; ".join(v for k, v in response.headers.items() if k == "set-cookie")


def _code(db: Database) -> tuple[str, str]:
    alice = accounts.register(db, "alice", "a long enough pass")
    token = sessions.start_session(db, alice, None)
    return token, sessions.issue_cookie_code(db, token, BROWSER)


def test_code_is_traded_once_for_an_httponly_strict_cookie(db, server) -> None:
    _, code = _code(db)
    response = _call(
        server.set_session_cookie, "/session/cookie", f"code={code}&next=/history", cookie=BOUND
    )
    assert (response.status_code, response.headers["location"]) == (303, "/history")
    header = _cookie_header(response)
    assert "HttpOnly" in header and "SameSite=strict" in header and "Path=/" in header
    assert "Max-Age=43200" in header and "Secure" not in header
    value = header.split(f"{session_cookie.COOKIE_NAME}=", 1)[1].split(";", 1)[0]
    token = session_cookie.unsign(db.settings, value)
    assert token is not None and sessions.check_session(db, token).username == "alice"
    assert response.headers["cache-control"] == "no-store"

    again = _call(
        server.set_session_cookie, "/session/cookie", f"code={code}&next=/history", cookie=BOUND
    )
    assert again.status_code == 303 and not _cookie_header(again)


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "history", ""]
)
def test_next_never_leaves_the_site(db, server, target) -> None:
    """An open redirect would let a link to our site send a user anywhere."""
    response = _call(server.set_session_cookie, "/session/cookie", f"code=x&next={target}")
    assert response.headers["location"] == "/"


def test_secure_only_when_our_proxy_says_https(db, server) -> None:
    _, code = _code(db)
    spoofed = _call(
        server.set_session_cookie,
        "/session/cookie",
        f"code={code}",
        peer="203.0.113.7",
        x_forwarded_proto="https",
        cookie=BOUND,
    )
    assert "Secure" not in _cookie_header(spoofed)
    token = sessions.start_session(db, accounts.find_actor(db, "alice"), None)
    code = sessions.issue_cookie_code(db, token, BROWSER)
    proxied = _call(
        server.set_session_cookie,
        "/session/cookie",
        f"code={code}",
        peer=PROXY,
        x_forwarded_proto="https",
        cookie=BOUND,
    )
    assert "Secure" in _cookie_header(proxied)


def test_end_route_deletes_the_cookie(db, server) -> None:
    response = _call(server.clear_session_cookie, "/session/end", "next=/")
    header = _cookie_header(response)
    assert f'{session_cookie.COOKIE_NAME}=""' in header and "Max-Age=0" in header
    assert response.headers["location"] == "/"


def test_login_csrf_another_sites_link_with_the_attackers_code_logs_nobody_in(db, server) -> None:
    """The attack: Mallory logs in, keeps her one-time code and makes Alice's browser load
    ``/session/cookie?code=...``; Alice would then upload her films into Mallory's account."""
    _, code = _code(db)  # issued to the attacker's browser (BROWSER)
    lure = f"code={code}&next=/upload"
    victim = f"{session_cookie.BINDING_COOKIE_NAME}=the-victim's-own-browser"
    for headers in (
        {"sec_fetch_site": "cross-site", "cookie": victim},
        {"sec_fetch_site": "same-site", "cookie": victim},
        {"origin": "https://evil.example", "cookie": victim},
        {"origin": "null", "cookie": victim},
    ):
        refused = _call(server.set_session_cookie, "/session/cookie", lure, **headers)
        assert refused.status_code == 403 and not _cookie_header(refused)
    # A browser too old to say where the request came from, or a same-site trick: the code is
    # bound to the attacker's browser, so the victim's (or a bare) browser gets no cookie.
    for cookie in (victim, ""):
        response = _call(
            server.set_session_cookie, "/session/cookie", lure, sec_fetch_site="none", cookie=cookie
        )
        assert response.status_code == 303 and not _cookie_header(response)
    # The code still works where it was issued, from the app's own page.
    own = _call(
        server.set_session_cookie,
        "/session/cookie",
        lure,
        origin="http://127.0.0.1:8501",
        cookie=BOUND,
    )
    assert session_cookie.COOKIE_NAME in _cookie_header(own)


def test_logout_csrf_another_site_cannot_clear_a_live_sessions_cookie(db, server) -> None:
    """The attack: another site makes the browser load ``/session/end``, which would drop the
    cookie of a session that stays open. Refused cross-site; and even a request that claims
    nothing clears only the cookie of a session the page has already ended."""
    token, _ = _code(db)
    cookie = f"{session_cookie.COOKIE_NAME}={session_cookie.sign(db.settings, token)}"
    for headers in ({"sec_fetch_site": "cross-site"}, {"origin": "https://evil.example"}):
        refused = _call(
            server.clear_session_cookie, "/session/end", "next=/", cookie=cookie, **headers
        )
        assert refused.status_code == 403 and not _cookie_header(refused)
    kept = _call(server.clear_session_cookie, "/session/end", "next=/", cookie=cookie)
    assert kept.status_code == 303 and not _cookie_header(kept)
    assert sessions.session_open(db, token)

    accounts.logout(db, accounts.find_actor(db, "alice"), token)
    cleared = _call(server.clear_session_cookie, "/session/end", "next=/", cookie=cookie)
    assert "Max-Age=0" in _cookie_header(cleared)


def test_every_browser_gets_a_pre_login_value_before_it_can_log_in(server) -> None:
    """The binding cookie comes with the first response (the app's page), once per browser."""

    async def page(scope, receive, send) -> None:
        await Response("<html>app</html>")(scope, receive, send)

    def set_cookies(**headers) -> list[str]:
        sent: list = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b""}

        async def send(message) -> None:
            sent.append(message)

        scope = _scope("/", "", "127.0.0.1", {"host": "127.0.0.1:8501", **headers})
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, server.BrowserBinding(page)(scope, receive, send)).result()
        return [v.decode() for k, v in sent[0]["headers"] if k == b"set-cookie"]

    [first] = set_cookies()
    assert first.startswith(f"{session_cookie.BINDING_COOKIE_NAME}=")
    assert "HttpOnly" in first and "SameSite=lax" in first and "Path=/" in first
    value = first.split("=", 1)[1].split(";", 1)[0]
    assert len(value) >= 40
    [second] = set_cookies()
    assert second.split(";", 1)[0] != first.split(";", 1)[0]
    assert set_cookies(cookie=f"{session_cookie.BINDING_COOKIE_NAME}={value}") == []
