"""End-to-end: the home page renders in a real browser for a visitor who is not logged in."""

from __future__ import annotations

import pytest

from core.findings import DISCLAIMER
from tests.e2e.browser_steps import Steps, wait_for_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_home_page_loads_with_disclaimer_and_login_link(new_page, steps: Steps) -> None:
    page = new_page()
    page.goto("/")
    wait_for_app(page)
    assert page.get_by_role("heading", name="Chest X-ray tracker").is_visible()
    assert page.get_by_text(DISCLAIMER[:40], exact=False).first.is_visible()
    # A visitor sees only Home and the login page in the navigation.
    assert page.get_by_role("link", name="Log in or register").first.is_visible()
    assert page.locator('[data-testid="stException"]').count() == 0
    path = steps.shot(page, "home")
    assert path.stat().st_size > 10_000
