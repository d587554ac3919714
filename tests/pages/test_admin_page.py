"""The admin page's account actions (AppTest): the table is current, created users must change."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.settings import PROJECT_ROOT
from storage import accounts
from storage.accounts import AuthError
from storage.actor import Actor
from tests.pages._flows import ADMIN_PASSWORD, log_in

PASSWORD = "a long enough pass"


@pytest.fixture
def admin(db) -> Actor:
    return accounts.authenticate(db, "admin", ADMIN_PASSWORD, None)


def _admin_page(admin: Actor) -> AppTest:
    app = AppTest.from_file(str(PROJECT_ROOT / "pages" / "admin.py"), default_timeout=30)
    log_in(app, admin)
    return app.run()


def _accounts_table(app: AppTest):
    [table] = [frame.value for frame in app.dataframe if "must change password" in frame.value]
    return table.set_index("username")


def test_a_created_account_is_listed_at_once_and_must_change_its_password(db, admin) -> None:
    app = _admin_page(admin)
    app.text_input(key="new_user_name").input("Dr.New")
    app.selectbox(key="new_user_role").select("clinician")
    app.text_input(key="new_user_password").input(PASSWORD)
    app.button[0].click().run()
    assert not app.exception
    [done] = [s.value for s in app.success]
    assert done.startswith("Created clinician account dr.new;")
    table = _accounts_table(app)
    assert table.loc["dr.new", "role"] == "clinician"
    assert bool(table.loc["dr.new", "must change password"])
    # The one success message: nothing like "choose a new password" sits beside it.
    assert not app.warning


def test_reset_shows_the_temporary_password_and_the_table_follows(db, admin) -> None:
    accounts.register(db, "alice", PASSWORD)
    app = _admin_page(admin)
    app.selectbox(key="manage_user").select("alice").run()
    app.button(key="reset_password").click().run()
    assert not app.exception
    [done] = [s.value for s in app.success]
    temporary = done.split("`")[1]
    assert accounts.authenticate(db, "alice", temporary, "c1").username == "alice"
    assert bool(_accounts_table(app).loc["alice", "must change password"])


def test_admin_lifts_the_login_delays_of_an_account(db, admin) -> None:
    accounts.register(db, "alice", PASSWORD)
    for attempt in range(4):
        with pytest.raises(AuthError):
            accounts.authenticate(db, "alice", f"wrong {attempt}", "203.0.113.5")
    with pytest.raises(AuthError, match="try again in"):
        accounts.authenticate(db, "alice", PASSWORD, "203.0.113.5")
    app = _admin_page(admin)
    app.selectbox(key="manage_user").select("alice").run()
    app.button(key="clear_throttle").click().run()
    assert not app.exception
    assert any("alice can try to log in again" in s.value for s in app.success)
    assert accounts.authenticate(db, "alice", PASSWORD, "203.0.113.5").username == "alice"


def test_a_created_user_is_asked_for_a_new_password_at_login(db, admin) -> None:
    doc = accounts.register(db, "doc", PASSWORD, role="clinician", by=admin)
    router = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=60)
    log_in(router, doc)
    router.run()
    assert not router.exception
    # The first page after login is the change itself, whatever page was asked for.
    assert [t.value for t in router.title] == ["Choose a new password"]

    account = AppTest.from_file(str(PROJECT_ROOT / "pages" / "account.py"), default_timeout=30)
    log_in(account, doc)
    account.run()
    assert any("Please choose a new password" in w.value for w in account.warning)
    account.text_input(key="old_password").input(PASSWORD)
    account.text_input(key="new_password").input("my very own passphrase")
    account.text_input(key="repeat_password").input("my very own passphrase")
    account.button[0].click().run()
    assert not account.exception
    assert [t.value for t in account.title] == ["Account"]
    assert [s.value for s in account.success] == [
        "Your password was changed. Other devices logged in to your account were logged out."
    ]
    assert not account.warning
