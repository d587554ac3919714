"""The entry point routes each role to its pages, and every page loads without an exception."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.pages._flows import PROJECT_ROOT, TIMEOUT_S, log_in, open_world, page

#: Every page and a role allowed on it.
PAGES_BY_ROLE = {
    "home.py": None,
    "login.py": None,
    "upload.py": "patient",
    "history.py": "patient",
    "timeline.py": "patient",
    "compare.py": "patient",
    "report.py": "patient",
    "sharing.py": "patient",
    "account.py": "patient",
    "teleconsult.py": "clinician",
    "analyst_nih.py": "analyst",
    "analyst_training_data.py": "analyst",
    "analyst_performance.py": "analyst",
    "analyst_cohort.py": "analyst",
    "admin.py": "admin",
}


@pytest.fixture
def actors(tmp_path, monkeypatch):
    from storage import accounts

    world = open_world(tmp_path, monkeypatch)
    admin = accounts.authenticate(world.db, "admin", "first-admin-pass-123", None)
    analyst = accounts.operator_create_user(world.db, "ana", "a long enough pass phrase", "analyst")
    return {"patient": world.alice, "clinician": world.dr_bob, "analyst": analyst, "admin": admin}


def test_every_page_is_listed():
    on_disk = {p.name for p in (PROJECT_ROOT / "pages").glob("*.py")} - {
        "__init__.py",
        "ui.py",
        "widgets.py",
        "emergency.py",  # the approvals block of the sharing and admin pages
        "readings.py",  # results as they hold for the patient, and the birth-year form
        "media.py",  # the upload page's import of a hospital CD or download (ZIP file)
    }
    assert on_disk == set(PAGES_BY_ROLE)


@pytest.mark.parametrize("name", sorted(PAGES_BY_ROLE))
def test_page_loads_without_exception(name, actors):
    role = PAGES_BY_ROLE[name]
    if role is None:
        at = AppTest.from_file(str(PROJECT_ROOT / "pages" / name), default_timeout=TIMEOUT_S)
    else:
        at = page(name, actors[role])
    at.run()
    assert not at.exception
    assert at.title, "the page rendered its heading"


@pytest.mark.parametrize(
    ("role", "page_path", "title"),
    [
        ("patient", "pages/upload.py", "Upload & analyze"),
        ("clinician", "pages/teleconsult.py", "Teleconsultation"),
        ("analyst", "pages/analyst_performance.py", "Model performance"),
        ("admin", "pages/admin.py", "Administration"),
    ],
)
def test_router_serves_each_role_its_pages(role, page_path, title, actors):
    at = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=TIMEOUT_S)
    log_in(at, actors[role])
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Chest X-ray tracker"], "home page is the default"
    assert f"({role})" in " ".join(str(e.value) for e in at.sidebar.caption)
    at.switch_page(page_path).run()
    assert not at.exception
    assert [t.value for t in at.title] == [title]


def test_router_offers_visitors_only_home_and_login(actors):
    at = AppTest.from_file(str(PROJECT_ROOT / "streamlit_app.py"), default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert not at.sidebar.caption, "nobody is logged in"
    at.switch_page("pages/login.py").run()
    assert [t.value for t in at.title] == ["Log in"]
