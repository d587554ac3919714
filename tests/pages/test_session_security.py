"""Session security through the pages (AppTest): logout, idle timeout, brute-force login.

Covered elsewhere and not repeated here: an account disabled during a session
(``test_auth_pages.py::test_disabled_user_is_stopped_on_next_run``) and the teleconsult page
after a grant expires or is revoked (``test_clinician_flow.py``).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from core.settings import PROJECT_ROOT
from pages import ui
from storage import accounts, schema, sessions
from storage.actor import Actor
from storage.db import Database
from storage.results import ResultIn
from storage.scans import save_scan
from tests.pages._flows import log_in, session_user

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


def _app(name: str, actor: Actor | None = None, idle_minutes: float = 0.0) -> AppTest:
    app = AppTest.from_file(str(PROJECT_ROOT / "pages" / f"{name}.py"), default_timeout=60)
    if actor is not None:
        token = log_in(app, actor)
        if idle_minutes:
            _set_last_seen(token, timedelta(minutes=idle_minutes))
    return app


def _set_last_seen(token: str, ago: timedelta) -> None:
    with ui.get_database().transaction() as session:
        row = session.exec(
            select(schema.UserSession).where(
                schema.UserSession.token_hash == sessions.hash_token(token)
            )
        ).one()
        row.last_seen_at = schema.utcnow() - ago
        session.add(row)


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
    token = account.session_state["session_token"]
    account.button(key="logout").click().run()
    assert session_user(account) is None
    assert "Please log in to use this page." in _shown(account)
    assert "alice" not in _shown(account)

    # Another tab of the same browser carries the same (now ended) session cookie.
    other_tab = AppTest.from_file(str(PROJECT_ROOT / "pages" / "history.py"), default_timeout=60)
    other_tab.session_state["session_token"] = token
    other_tab.run()
    assert "You logged out." in _shown(other_tab)
    assert "alice" not in _shown(other_tab)
    assert SECRET_FILENAME not in _shown(other_tab) and not other_tab.dataframe


def test_idle_timeout_logs_out_and_shows_no_data(db, alice) -> None:
    app = _app("history", alice, idle_minutes=16).run()
    assert not app.exception
    assert "You were logged out after 15 minutes without activity." in _shown(app)
    assert session_user(app) is None
    assert SECRET_FILENAME not in _shown(app) and not app.dataframe

    app.run()
    assert "Please log in to use this page." in _shown(app)


def test_password_change_elsewhere_ends_this_browser_session(db, alice) -> None:
    """Reported: a password change or reset did not end the user's other sessions."""
    stolen = _app("history", alice).run()
    assert SECRET_FILENAME in _shown(stolen)
    owner = _app("account", alice).run()
    owner.text_input(key="old_password").input(PASSWORD)
    owner.text_input(key="new_password").input("a fresh pass phrase")
    owner.text_input(key="repeat_password").input("a fresh pass phrase")
    owner.button[0].click().run()
    assert session_user(owner) == "alice"

    stolen.run()
    assert "Your password was changed" in _shown(stolen)
    assert SECRET_FILENAME not in _shown(stolen) and not stolen.dataframe


def test_login_page_slows_brute_force_with_the_generic_message(db, alice) -> None:
    app = _app("login").run()
    for attempt in range(3):
        app.text_input(key="login_username").input("alice")
        app.text_input(key="login_password").input(f"wrong guess {attempt}")
        app.button[0].click().run()
        assert "Login failed: wrong username or password" in _shown(app)

    # This client now waits, even with the right password, and is told for how long.
    app.text_input(key="login_password").input(PASSWORD)
    app.button[0].click().run()
    [refused] = [e.value for e in app.error]
    assert refused.startswith(accounts.GENERIC_LOGIN_ERROR.removesuffix("later."))
    assert "try again in" in refused
    assert session_user(app) is None


def test_idle_session_with_a_cut_audit_trail_fails_closed_in_a_sentence(db, alice) -> None:
    app = _app("history", alice, idle_minutes=16)
    with db.engine.begin() as conn:
        last = conn.exec_driver_sql("SELECT MAX(seq) FROM audit_events").scalar_one()
        conn.exec_driver_sql(f"DELETE FROM audit_events WHERE seq = {int(last)}")
    app.run()
    assert not app.exception
    assert "audit trail failed its integrity check" in _shown(app)
    assert SECRET_FILENAME not in _shown(app) and not app.dataframe
