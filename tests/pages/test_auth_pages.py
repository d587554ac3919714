"""Page tests (streamlit AppTest) for login, account, admin, history and sharing pages."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from core.settings import PROJECT_ROOT
from core.views import View
from pages import ui
from storage import accounts, schema, sessions, sharing
from storage.actor import Actor
from storage.scans import RecordNotFound, list_scans, load_scan, save_scan
from tests.pages._flows import (
    ADMIN_PASSWORD,
    log_in,
    open_database,
    session_user,
    shipped_result,
)

PASSWORD = "a long enough pass"


def _page(name: str, actor: Actor | None = None) -> AppTest:
    app = AppTest.from_file(str(PROJECT_ROOT / "pages" / f"{name}.py"), default_timeout=30)
    if actor is not None:
        log_in(app, actor)
    return app.run()


def _idle(db, token: str, minutes: int) -> None:
    """Make a session look unused for ``minutes`` (the test does not wait)."""
    with db.transaction() as session:
        row = session.exec(
            select(schema.UserSession).where(
                schema.UserSession.token_hash == sessions.hash_token(token)
            )
        ).one()
        row.last_seen_at = schema.utcnow() - timedelta(minutes=minutes)
        session.add(row)


def _texts(app: AppTest) -> str:
    parts = [
        e.value for kind in ("error", "warning", "info", "success") for e in getattr(app, kind)
    ]
    return " | ".join(str(p) for p in parts)


def test_register_logs_the_new_patient_in(db) -> None:
    app = _page("login")
    app.text_input(key="register_username").input("newpatient")
    app.text_input(key="register_password").input(PASSWORD)
    app.text_input(key="register_repeat").input(PASSWORD)
    app.button[1].click().run()
    assert not app.exception
    assert session_user(app) == "newpatient"


def test_registration_over_the_hourly_limit_is_refused_in_a_sentence(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRATIONS_PER_HOUR", "1")
    db = open_database(tmp_path, monkeypatch)
    try:
        accounts.register(db, "first", PASSWORD)
        app = _page("login")
        app.text_input(key="register_username").input("second")
        app.text_input(key="register_password").input(PASSWORD)
        app.text_input(key="register_repeat").input(PASSWORD)
        app.button[1].click().run()
        assert not app.exception
        assert session_user(app) is None
        [error] = app.error
        assert error.value == str(accounts.RegistrationRateExceeded())
        assert [
            u.username
            for u in accounts.list_users(
                db, accounts.authenticate(db, "admin", ADMIN_PASSWORD, None)
            )
        ] == ["admin", "first"]
    finally:
        db.close()
        ui.get_database.clear()


def test_login_success_and_generic_failure(db) -> None:
    accounts.register(db, "alice", PASSWORD)
    app = _page("login")
    app.text_input(key="login_username").input("alice")
    app.text_input(key="login_password").input("wrong password!")
    app.button[0].click().run()
    assert accounts.GENERIC_LOGIN_ERROR in _texts(app)
    assert session_user(app) is None

    app.text_input(key="login_password").input(PASSWORD)
    app.button[0].click().run()
    assert session_user(app) == "alice"


def test_weak_password_registration_shows_one_sentence(db) -> None:
    app = _page("login")
    app.text_input(key="register_username").input("bob")
    app.text_input(key="register_password").input("password")
    app.text_input(key="register_repeat").input("password")
    app.button[1].click().run()
    assert "too common" in _texts(app)
    assert not app.exception


def test_pages_require_login(db) -> None:
    for name in ("account", "history", "sharing", "admin"):
        app = _page(name)
        assert "Please log in" in _texts(app), name


def test_change_password_and_logout(db) -> None:
    alice = accounts.register(db, "alice", PASSWORD)
    app = _page("account", alice)
    app.text_input(key="old_password").input(PASSWORD)
    app.text_input(key="new_password").input("another good secret")
    app.text_input(key="repeat_password").input("another good secret")
    app.button[0].click().run()
    assert "password was changed" in _texts(app)
    assert accounts.authenticate(db, "alice", "another good secret", None) == alice
    # The browser that changed the password stays logged in.
    assert session_user(app) == "alice"

    app.button(key="logout").click().run()
    assert session_user(app) is None


def test_idle_session_is_ended(db) -> None:
    alice = accounts.register(db, "alice", PASSWORD)
    app = AppTest.from_file(str(PROJECT_ROOT / "pages" / "history.py"), default_timeout=30)
    token = log_in(app, alice)
    _idle(db, token, minutes=16)
    app.run()
    assert "without activity" in _texts(app)
    assert session_user(app) is None


def test_disabled_user_is_stopped_on_next_run(db) -> None:
    alice = accounts.register(db, "alice", PASSWORD)
    app = _page("history", alice)
    assert "no stored scans" in _texts(app)
    admin = accounts.authenticate(db, "admin", ADMIN_PASSWORD, None)
    accounts.set_disabled(db, admin, "alice", True)
    app.run()
    assert "disabled" in _texts(app)
    assert session_user(app) is None


def test_pending_password_change_blocks_other_pages(db) -> None:
    alice = accounts.register(db, "alice", PASSWORD)
    admin = accounts.authenticate(db, "admin", ADMIN_PASSWORD, None)
    accounts.admin_reset_password(db, admin, "alice")
    assert "choose a new password" in _texts(_page("history", alice))
    assert not _page("account", alice).exception


def test_admin_page_is_for_admins_only(db) -> None:
    alice = accounts.register(db, "alice", PASSWORD)
    assert "not available for your account" in _texts(_page("admin", alice))
    admin = accounts.authenticate(db, "admin", ADMIN_PASSWORD, None)
    app = _page("admin", admin)
    assert not app.exception
    app.button(key="verify_audit").click().run()
    assert "audit trail is intact" in _texts(app)


def test_admin_page_shows_a_cut_audit_trail_instead_of_failing(db) -> None:
    admin = accounts.authenticate(db, "admin", ADMIN_PASSWORD, None)
    accounts.register(db, "alice", PASSWORD)
    # Logged in before the cut: a broken trail refuses new logins (they are audited).
    app = AppTest.from_file(str(PROJECT_ROOT / "pages" / "admin.py"), default_timeout=30)
    log_in(app, admin)
    with db.engine.begin() as conn:
        last = conn.execute(sa.text("SELECT MAX(seq) FROM audit_events")).scalar_one()
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq = :seq"), {"seq": last})

    app.run()
    assert not app.exception
    assert "audit" in " ".join(e.value for e in app.error).lower()
    app.button(key="verify_audit").click().run()
    assert not app.exception
    assert "tampered with" in _texts(app)
    assert "Recorded breaks" in [s.value for s in app.subheader]
    [breaks] = [frame.value for frame in app.dataframe if "what was found" in frame.value]
    assert list(breaks["repaired (UTC)"]) == ["not yet"]


def test_history_lists_opens_and_deletes_with_confirmation(db) -> None:
    alice = accounts.register(db, "alice", PASSWORD)
    scan_id = save_scan(
        db,
        alice,
        pixels=np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64),
        metadata={},
        enhancement={},
        scan_date=date(2024, 2, 3),
        filename="front.png",
        view=View.PA,
        result=shipped_result(pneumonia=0.7, covid19=0.1),
    )
    app = _page("history", alice)
    table = app.table[0].value
    # Labelled by date and view, never by file name; the model's identity stays in Details.
    assert table["Scan"].tolist() == ["3 Feb 2024, frontal (PA, standing)"]
    assert "Model" not in table.columns
    assert table["Status"].tolist() == ["Scored"]
    assert "pneumonia 70% (level 50%)" in table["Reading"].tolist()[0]
    assert "Pneumonia is at 70%" in table["Needs attention"].tolist()[0]

    # The only scan is the selected one, so it is open.
    assert not app.exception
    opened = app.dataframe[0].value
    assert opened.set_index("finding").loc["Pneumonia", "probability"] == "70%"
    assert "Decision support only" in _texts(app)

    assert app.button(key=f"history_delete_{scan_id}").disabled
    app.checkbox(key=f"history_confirm_delete_{scan_id}").check().run()
    app.button(key=f"history_delete_{scan_id}").click().run()
    assert list_scans(db, alice, alice.user_id) == []
    # No image is left; the audit trail's anchors live beside the images and stay.
    assert [p.name for p in db.blobs.root.iterdir() if p.name != "audit-anchor"] == []
    with pytest.raises(RecordNotFound):
        load_scan(db, alice, scan_id)


def test_patient_shares_and_sees_emergency_access(db) -> None:
    alice = accounts.register(db, "alice", PASSWORD)
    doc = accounts.operator_create_user(db, "doc", PASSWORD, "clinician")
    app = _page("sharing", alice)
    app.text_input(key="grant_clinician").input("doc")
    app.button[0].click().run()
    assert "Shared with doc" in _texts(app)
    assert [p.username for p in sharing.shared_patients(db, doc)] == ["alice"]

    sharing.request_emergency_access(db, doc, "alice", "unresponsive at the clinic door")
    app = _page("sharing", alice)
    assert "EMERGENCY ACCESS" in _texts(app)
    assert "EMERGENCY ACCESS: doc" in _texts(app)
    assert any("unresponsive at the clinic door" in t.value for t in app.text)
