"""Page tests (AppTest): the birth year asked at registration and edited on the Account page."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.settings import PROJECT_ROOT
from storage import accounts
from storage.profile import get_birth_year
from tests.pages._flows import PASSWORD, log_in, texts


def _page(name: str) -> AppTest:
    return AppTest.from_file(str(PROJECT_ROOT / "pages" / f"{name}.py"), default_timeout=60)


def test_registration_asks_for_the_birth_year_and_keeps_it_sealed(db) -> None:
    app = _page("login").run()
    app.text_input(key="register_username").input("newpatient")
    app.text_input(key="register_password").input(PASSWORD)
    app.text_input(key="register_repeat").input(PASSWORD)
    app.number_input(key="register_birth_year").set_value(1961)
    app.button[1].click().run()
    assert not app.exception
    actor = accounts.find_actor(db, "newpatient")
    assert get_birth_year(db, actor, actor.user_id) == 1961


def test_the_birth_year_stays_optional_at_registration(db) -> None:
    app = _page("login").run()
    app.text_input(key="register_username").input("nobirthyear")
    app.text_input(key="register_password").input(PASSWORD)
    app.text_input(key="register_repeat").input(PASSWORD)
    app.button[1].click().run()
    assert not app.exception
    actor = accounts.find_actor(db, "nobirthyear")
    assert get_birth_year(db, actor, actor.user_id) is None


def test_the_account_page_changes_and_removes_the_birth_year(db) -> None:
    alice = accounts.register(db, "alice", PASSWORD)
    app = _page("account")
    log_in(app, alice)
    app.run()
    app.number_input(key="birth_year").set_value(1984)
    app.button(key="FormSubmitter:birth_year_form-Save birth year").click().run()
    assert not app.exception
    assert "Your birth year 1984 was saved." in texts(app)
    assert get_birth_year(db, alice, alice.user_id) == 1984
    app.button(key="FormSubmitter:birth_year_form-Remove birth year").click().run()
    assert get_birth_year(db, alice, alice.user_id) is None
