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


def _call(handler, path: str, query: str = "", *, peer: str = "127.0.0.1", **headers) -> Response:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
        "client": (peer, 50000),
        "server": ("127.0.0.1", 8501),
    }
    # A fresh event loop in its own thread: a browser test earlier in the same run may leave
    # one running in this thread, where asyncio.run refuses to start another.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, handler(Request(scope))).result()


def _cookie_header(response: Response) -> str:
    return "; ".join(v for k, v in response.headers.items() if k == "set-cookie")


def _code(db: Database) -> tuple[str, str]:
    alice = accounts.register(db, "alice", "a long enough pass")
    token = sessions.start_session(db, alice, None)
    return token, sessions.issue_cookie_code(db, token)


def test_code_is_traded_once_for_an_httponly_strict_cookie(db, server) -> None:
    _, code = _code(db)
    response = _call(server.set_session_cookie, "/session/cookie", f"code={code}&next=/history")
    assert (response.status_code, response.headers["location"]) == (303, "/history")
    header = _cookie_header(response)
    assert "HttpOnly" in header and "SameSite=strict" in header and "Path=/" in header
    assert "Max-Age=43200" in header and "Secure" not in header
    value = header.split(f"{session_cookie.COOKIE_NAME}=", 1)[1].split(";", 1)[0]
    token = session_cookie.unsign(db.settings, value)
    assert token is not None and sessions.check_session(db, token).username == "alice"
    assert response.headers["cache-control"] == "no-store"

    again = _call(server.set_session_cookie, "/session/cookie", f"code={code}&next=/history")
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
    )
    assert "Secure" not in _cookie_header(spoofed)
    token = sessions.start_session(db, accounts.find_actor(db, "alice"), None)
    code = sessions.issue_cookie_code(db, token)
    proxied = _call(
        server.set_session_cookie,
        "/session/cookie",
        f"code={code}",
        peer=PROXY,
        x_forwarded_proto="https",
    )
    assert "Secure" in _cookie_header(proxied)


def test_end_route_deletes_the_cookie(db, server) -> None:
    response = _call(server.clear_session_cookie, "/session/end", "next=/")
    header = _cookie_header(response)
    assert f'{session_cookie.COOKIE_NAME}=""' in header and "Max-Age=0" in header
    assert response.headers["location"] == "/"
