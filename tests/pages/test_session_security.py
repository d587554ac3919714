"""Session security through the pages (AppTest): logout, idle timeout, brute-force login.

Covered elsewhere and not repeated here: an account disabled during a session
(``test_auth_pages.py::test_disabled_user_is_stopped_on_next_run``) and the teleconsult page
after a grant expires or is revoked (``test_clinician_flow.py``).
"""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.settings import PROJECT_ROOT
from storage import accounts
from storage.actor import Actor
from storage.db import Database
from storage.results import ResultIn
from storage.scans import save_scan

PASSWORD = "a long enough pass"
SECRET_FILENAME = "night_sweats_front.png"


@pytest.fixture
def alice(db: Database) -> Actor:
    """A patient with one stored scan whose file name must never leak."""
    actor = accounts.register(db, "alice", PASSWORD)
    save_scan(
        db,
        actor,
        pixels=np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32),
        metadata={},
        enhancement={},
        scan_date=date(2024, 2, 3),
        filename=SECRET_FILENAME,
        result=ResultIn({"pneumonia": 0.7}, "net", "1.0.0", "aa" * 32),
    )
    return actor


def _app(name: str, actor: Actor | None = None, idle_seconds: float = 0.0) -> AppTest:
    app = AppTest.from_file(str(PROJECT_ROOT / "pages" / f"{name}.py"), default_timeout=60)
    if actor is not None:
        app.session_state["actor"] = actor
        app.session_state["last_activity"] = time.time() - idle_seconds
    return app


def _shown(app: AppTest) -> str:
    """Everything the page rendered as text, tables included."""
    parts = [
        e.value
        for kind in (
            "error",
            "warning",
            "info",
            "success",
            "markdown",
            "title",
            "subheader",
            "caption",
        )
        for e in getattr(app, kind)
    ]
    parts += [frame.value.to_string() for frame in app.dataframe]
    return " | ".join(str(p) for p in parts)


def test_after_logout_the_page_shows_the_login_prompt_and_no_data(db, alice) -> None:
    history = _app("history", alice).run()
    assert SECRET_FILENAME in _shown(history), "the data is shown while logged in"

    account = _app("account", alice).run()
    account.button(key="logout").click().run()
    assert "actor" not in account.session_state
    assert "Please log in to use this page." in _shown(account)
    assert "alice" not in _shown(account)

    # The browser's next page load carries the (now empty) session.
    after = _app("history").run()
    assert "Please log in to use this page." in _shown(after)
    assert SECRET_FILENAME not in _shown(after) and not after.dataframe


def test_idle_timeout_logs_out_and_shows_no_data(db, alice) -> None:
    app = _app("history", alice, idle_seconds=16 * 60).run()
    assert not app.exception
    assert "You were logged out after 15 minutes without activity." in _shown(app)
    assert "actor" not in app.session_state
    assert SECRET_FILENAME not in _shown(app) and not app.dataframe

    app.run()
    assert "Please log in to use this page." in _shown(app)


def test_login_page_locks_out_brute_force_with_the_generic_message(db, alice) -> None:
    app = _app("login").run()
    for attempt in range(10):
        app.text_input(key="login_username").input("alice")
        app.text_input(key="login_password").input(f"wrong guess {attempt}")
        app.button[0].click().run()
        assert accounts.GENERIC_LOGIN_ERROR in _shown(app)

    app.text_input(key="login_password").input(PASSWORD)
    app.button[0].click().run()
    locked_out = [e.value for e in app.error]
    assert "actor" not in app.session_state

    app.text_input(key="login_username").input("nobody-at-all")
    app.button[0].click().run()
    unknown = [e.value for e in app.error]
    assert locked_out == unknown == [accounts.GENERIC_LOGIN_ERROR]
    assert "actor" not in app.session_state
