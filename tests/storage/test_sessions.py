"""Server-side sessions: checked on every run; ended by logout, password change, reset, disable."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlmodel import select

from storage import accounts, schema, session_cookie, sessions
from storage.db import Database
from storage.sessions import SessionEnded
from tests.storage.conftest import PASSWORD


def _row(db: Database, token: str) -> schema.UserSession:
    with db.transaction() as session:
        return session.exec(
            select(schema.UserSession).where(
                schema.UserSession.token_hash == sessions.hash_token(token)
            )
        ).one()


def _age(db: Database, token: str, *, created: timedelta, seen: timedelta) -> None:
    now = schema.utcnow()
    with db.transaction() as session:
        row = session.exec(
            select(schema.UserSession).where(
                schema.UserSession.token_hash == sessions.hash_token(token)
            )
        ).one()
        row.created_at, row.last_seen_at = now - created, now - seen
        session.add(row)


def _actions(db: Database) -> list[str]:
    with db.transaction() as session:
        return list(session.exec(select(schema.AuditEvent.action).order_by(schema.AuditEvent.seq)))


def test_a_session_is_checked_and_only_its_hash_is_stored(database, make_user) -> None:
    alice = make_user("alice")
    token = sessions.start_session(database, alice, "198.51.100.1")
    assert sessions.check_session(database, token) == alice
    row = _row(database, token)
    assert row.token_hash == sessions.hash_token(token) != token
    assert (row.user_id, row.client, row.ended_at) == (alice.user_id, "198.51.100.1", None)
    with database.engine.connect() as conn:
        dump = "\n".join(str(r) for r in conn.exec_driver_sql("SELECT * FROM user_sessions"))
    assert token not in dump
    assert "session_start" in _actions(database)


def test_unknown_or_forged_tokens_are_refused(database, make_user) -> None:
    alice = make_user("alice")
    token = sessions.start_session(database, alice, None)
    for forged in ("", "x" * 43, token[:-1] + ("A" if token[-1] != "A" else "B")):
        with pytest.raises(SessionEnded):
            sessions.check_session(database, forged)


def test_idle_session_ends_with_the_reason(database, make_user) -> None:
    alice = make_user("alice")
    token = sessions.start_session(database, alice, None)
    _age(database, token, created=timedelta(minutes=20), seen=timedelta(minutes=16))
    with pytest.raises(SessionEnded, match="after 15 minutes without activity") as ended:
        sessions.check_session(database, token)
    assert ended.value.reason == sessions.IDLE
    assert _row(database, token).end_reason == sessions.IDLE
    assert _actions(database)[-1] == "session_end"
    # Ended for good: activity afterwards does not bring it back.
    _age(database, token, created=timedelta(minutes=20), seen=timedelta(0))
    with pytest.raises(SessionEnded):
        sessions.check_session(database, token)


def test_active_session_still_expires_after_its_lifetime(database, make_user) -> None:
    alice = make_user("alice")
    token = sessions.start_session(database, alice, None)
    _age(database, token, created=timedelta(hours=12, minutes=1), seen=timedelta(seconds=5))
    with pytest.raises(SessionEnded) as ended:
        sessions.check_session(database, token)
    assert ended.value.reason == sessions.EXPIRED


def test_checking_refreshes_last_seen(database, make_user) -> None:
    alice = make_user("alice")
    token = sessions.start_session(database, alice, None)
    _age(database, token, created=timedelta(minutes=30), seen=timedelta(minutes=14))
    sessions.check_session(database, token)
    assert schema.utcnow() - _row(database, token).last_seen_at < timedelta(minutes=1)


def test_activity_is_written_at_most_once_a_minute(database, make_user) -> None:
    alice = make_user("alice")
    token = sessions.start_session(database, alice, None)
    _age(database, token, created=timedelta(minutes=5), seen=timedelta(seconds=30))
    stored = _row(database, token).last_seen_at
    for _ in range(5):  # page reruns within the minute write nothing
        assert sessions.check_session(database, token) == alice
    assert _row(database, token).last_seen_at == stored
    _age(database, token, created=timedelta(minutes=5), seen=timedelta(seconds=61))
    sessions.check_session(database, token)
    assert schema.utcnow() - _row(database, token).last_seen_at < timedelta(seconds=5)


def test_idle_time_counts_from_the_stored_activity(database, make_user) -> None:
    # The stored time lags the last action by under a minute, so a session ends at most a
    # minute early, never late: 14 min 50 s after the stored time it is still open (and the
    # check writes the time, being over a minute old); 15 min 1 s after, it has ended.
    alice = make_user("alice")
    token = sessions.start_session(database, alice, None)
    _age(database, token, created=timedelta(minutes=30), seen=timedelta(minutes=14, seconds=50))
    assert sessions.check_session(database, token) == alice
    _age(database, token, created=timedelta(minutes=30), seen=timedelta(minutes=15, seconds=1))
    with pytest.raises(SessionEnded) as ended:
        sessions.check_session(database, token)
    assert ended.value.reason == sessions.IDLE


def test_password_change_ends_the_other_sessions(database, make_user) -> None:
    """Reported: a password change did not end the user's other sessions."""
    alice = make_user("alice")
    thief = sessions.start_session(database, alice, "203.0.113.66")
    own = sessions.start_session(database, alice, "198.51.100.1")
    accounts.change_password(database, alice, PASSWORD, "a brand new passphrase", keep_token=own)
    with pytest.raises(SessionEnded, match="password was changed"):
        sessions.check_session(database, thief)
    assert sessions.check_session(database, own) == alice


def test_admin_reset_ends_every_session(database, admin, make_user) -> None:
    """Reported: a reset did not end the user's sessions."""
    alice = make_user("alice")
    token = sessions.start_session(database, alice, None)
    accounts.admin_reset_password(database, admin, "alice")
    with pytest.raises(SessionEnded) as ended:
        sessions.check_session(database, token)
    assert ended.value.reason == sessions.PASSWORD_RESET


def test_disabling_ends_every_session(database, admin, make_user) -> None:
    alice = make_user("alice")
    tokens = [sessions.start_session(database, alice, None) for _ in range(2)]
    accounts.set_disabled(database, admin, "alice", True)
    for token in tokens:
        with pytest.raises(SessionEnded, match="disabled") as ended:
            sessions.check_session(database, token)
        assert ended.value.reason == sessions.DISABLED
    # Re-enabling does not revive them: the user logs in again.
    accounts.set_disabled(database, admin, "alice", False)
    with pytest.raises(SessionEnded):
        sessions.check_session(database, tokens[0])


def test_a_role_change_ends_the_session(database, make_user) -> None:
    doc = make_user("doc", "clinician")
    token = sessions.start_session(database, doc, None)
    with database.transaction() as session:
        user = session.get_one(schema.User, doc.user_id)
        user.role = "patient"
        session.add(user)
    with pytest.raises(SessionEnded) as ended:
        sessions.check_session(database, token)
    assert ended.value.reason == sessions.ROLE_CHANGED


def test_disabled_account_cannot_start_a_session(database, admin, make_user) -> None:
    alice = make_user("alice")
    accounts.set_disabled(database, admin, "alice", True)
    with pytest.raises(PermissionError):
        sessions.start_session(database, alice, None)
    with pytest.raises(PermissionError):
        sessions.start_session(database, replace(alice, role="admin"), None)


def test_logout_ends_this_session_and_everywhere_ends_all(database, make_user) -> None:
    alice = make_user("alice")
    bob = make_user("bob")
    laptop, phone = (sessions.start_session(database, alice, None) for _ in range(2))
    bobs = sessions.start_session(database, bob, None)
    # Another user's token ends nothing.
    accounts.logout(database, alice, bobs)
    assert sessions.check_session(database, bobs) == bob
    accounts.logout(database, alice, laptop)
    with pytest.raises(SessionEnded, match="You logged out"):
        sessions.check_session(database, laptop)
    assert sessions.check_session(database, phone) == alice
    accounts.logout(database, alice, None, everywhere=True)
    with pytest.raises(SessionEnded, match="every device"):
        sessions.check_session(database, phone)
    assert _actions(database)[-1] == "logout"


def test_end_session_is_audited_and_idempotent(database, make_user) -> None:
    alice = make_user("alice")
    token = sessions.start_session(database, alice, None)
    sessions.end_session(database, token, sessions.LOGOUT)
    sessions.end_session(database, token, sessions.IDLE)
    assert _row(database, token).end_reason == sessions.LOGOUT
    assert _actions(database).count("session_end") == 1


#: The logging-in browser's pre-login value (its ``cxr_browser`` cookie).
BROWSER = "the-browser-that-logged-in"


def test_cookie_code_is_traded_once_for_a_fresh_token(database, make_user) -> None:
    alice = make_user("alice")
    first = sessions.start_session(database, alice, None)
    code = sessions.issue_cookie_code(database, first, BROWSER)
    cookie_token = sessions.redeem_cookie_code(database, code, BROWSER)
    assert cookie_token is not None and cookie_token != first
    assert sessions.check_session(database, cookie_token) == alice
    # The token the page saw before the cookie, and the code itself, no longer work.
    with pytest.raises(SessionEnded):
        sessions.check_session(database, first)
    assert sessions.redeem_cookie_code(database, code, BROWSER) is None
    assert sessions.redeem_cookie_code(database, "made-up code", BROWSER) is None
    assert "session_cookie_set" in _actions(database)


def test_login_csrf_a_code_works_only_in_the_browser_that_logged_in(database, make_user) -> None:
    """The attack: Mallory logs in, keeps her one-time code and has Alice's browser redeem it,
    so that Alice works in Mallory's account unawares. Alice's browser holds another pre-login
    value, or none: the code gives it nothing, and still works in Mallory's own browser."""
    mallory = make_user("mallory")
    token = sessions.start_session(database, mallory, None)
    code = sessions.issue_cookie_code(database, token, "mallory's browser")
    assert sessions.redeem_cookie_code(database, code, "alice's browser") is None
    assert sessions.redeem_cookie_code(database, code, None) is None
    assert sessions.redeem_cookie_code(database, code, "") is None
    assert "session_cookie_set" not in _actions(database)
    assert sessions.redeem_cookie_code(database, code, "mallory's browser") is not None
    with pytest.raises(ValueError):
        sessions.issue_cookie_code(database, token, "")


def test_expired_cookie_code_or_ended_session_gives_no_cookie(database, make_user) -> None:
    alice = make_user("alice")
    token = sessions.start_session(database, alice, None)
    code = sessions.issue_cookie_code(database, token, BROWSER)
    with database.transaction() as session:
        row = session.exec(select(schema.UserSession)).one()
        row.cookie_code_expires_at = schema.utcnow() - timedelta(seconds=1)
        session.add(row)
    assert sessions.redeem_cookie_code(database, code, BROWSER) is None

    code = sessions.issue_cookie_code(database, token, BROWSER)
    accounts.logout(database, alice, token)
    assert sessions.redeem_cookie_code(database, code, BROWSER) is None
    with pytest.raises(SessionEnded):
        sessions.issue_cookie_code(database, token, BROWSER)


def test_session_open_tells_a_live_session_from_an_ended_one(database, make_user) -> None:
    alice = make_user("alice")
    token = sessions.start_session(database, alice, None)
    assert sessions.session_open(database, token)
    accounts.logout(database, alice, token)
    assert not sessions.session_open(database, token)
    assert not sessions.session_open(database, "made-up token")


def test_cookie_value_is_signed(settings) -> None:
    value = session_cookie.sign(settings, "the-token")
    assert session_cookie.unsign(settings, value) == "the-token"
    tampered = "other-token" + value[len("the-token") :]
    for bad in (tampered, "the-token", "", None, value + "x"):
        assert session_cookie.unsign(settings, bad) is None


def test_cookie_secret_is_the_setting_or_one_shared_local_key(settings, tmp_path) -> None:
    value = session_cookie.sign(settings, "t")
    # Another process on the same DATA_DIR signs alike (the key file is kept).
    assert settings.cookie_key_file.is_file()
    assert oct(settings.cookie_key_file.stat().st_mode & 0o777) == "0o600"
    assert session_cookie.unsign(replace(settings), value) == "t"
    configured = replace(settings, cookie_secret="s" * 40)
    assert session_cookie.unsign(configured, value) is None
    assert session_cookie.unsign(configured, session_cookie.sign(configured, "t")) == "t"
    elsewhere = replace(settings, data_dir=tmp_path / "other")
    assert session_cookie.unsign(elsewhere, value) is None
