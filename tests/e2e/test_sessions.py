"""End-to-end: staying logged in (reload, new tab, deep link), logout everywhere, first admin.

The session lives in the database; the browser keeps only an HttpOnly, SameSite=Strict cookie
with its signed id, set by the server's ``/session/cookie`` route after login.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.e2e.browser_steps import (
    RUN_TIMEOUT_MS,
    Steps,
    go,
    log_in,
    register_patient,
    settle,
)
from tests.e2e.conftest import serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PATIENT, PATIENT_PASSWORD = "e2e-keeper", "keeper-Passw0rd-e2e"
VIEWPORT = {"width": 1400, "height": 1000}


def _sidebar(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def test_reload_new_tab_and_deep_link_keep_the_login_and_logout_ends_every_tab(
    new_page, steps: Steps
) -> None:
    first = new_page()
    register_patient(first, PATIENT, PATIENT_PASSWORD)
    [cookie] = [c for c in first.context.cookies() if c["name"] == "cxr_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # Only a signed id: no username or role in it.
    assert PATIENT not in cookie["value"] and "patient" not in cookie["value"]
    assert first.evaluate("document.cookie").find("cxr_session") == -1, "hidden from scripts"

    first.reload()
    settle(first)
    assert f"Logged in as {PATIENT}" in _sidebar(first)
    steps.shot(first, "after reload")

    second = first.context.new_page()
    second.goto("/history")  # a deep link, in a new tab
    settle(second)
    second.get_by_role("heading", name="My scans").wait_for()
    assert f"Logged in as {PATIENT}" in _sidebar(second)
    steps.shot(second, "deep link in a new tab")

    go(first, "Account")
    first.get_by_role("button", name="Log out", exact=True).click()
    first.wait_for_url(re.compile(r".*/$"))
    settle(first)
    assert "Logged in as" not in _sidebar(first)
    assert not [c for c in first.context.cookies() if c["name"] == "cxr_session"]

    # The other tab is logged out at its next action, sidebar included.
    go(second, "Timeline")
    second.get_by_text("You logged out.").wait_for()
    assert "Logged in as" not in _sidebar(second)
    steps.shot(second, "other tab after logout")
    second.reload()
    settle(second)
    assert "Logged in as" not in _sidebar(second)


def test_logout_everywhere_ends_the_session_on_another_device(new_page) -> None:
    laptop, phone = new_page(), new_page()
    register_patient(laptop, "e2e-two-devices", PATIENT_PASSWORD)
    # A deep link while logged out: after logging in, the phone lands on the page asked for.
    phone.goto("/timeline")
    settle(phone)
    phone.get_by_label("Username", exact=True).fill("e2e-two-devices")
    phone.get_by_label("Password", exact=True).fill(PATIENT_PASSWORD)
    phone.get_by_role("button", name="Log in", exact=True).click()
    phone.wait_for_url(re.compile(r".*/timeline$"))
    settle(phone)
    assert "Logged in as e2e-two-devices" in _sidebar(phone)
    go(laptop, "Account")
    laptop.get_by_role("button", name="Log out on every device").click()
    laptop.wait_for_url(re.compile(r".*/$"))
    settle(laptop)
    go(phone, "My scans")
    phone.get_by_text("You logged out on every device.").wait_for()
    assert "Logged in as" not in _sidebar(phone)


@pytest.fixture()
def first_start(tmp_path: Path, artifacts: Path):
    """A server started on an empty data folder without ADMIN_PASSWORD."""
    with serve(tmp_path / "data", artifacts / "first-start.log") as server:
        yield server


def _one_time_password(log: Path) -> str:
    """The password of the block the server prints, checked to be its last lines."""
    # Storage opens just after start-up, then prints the block: wait for it, as long as a
    # script run may take on a loaded machine.
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while "one-time password" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = "\n".join(log.read_text().rstrip().splitlines()[-6:])
    match = re.search(r"one-time password: (\S+)", text)
    assert match, f"the password block is not the last output:\n{text}"
    return match.group(1)


def test_first_start_admin_changes_the_password_at_login_and_creates_accounts(
    browser, first_start, steps: Steps
) -> None:
    password = _one_time_password(first_start.log)
    context = browser.new_context(viewport=VIEWPORT, base_url=first_start.url)
    try:
        page = context.new_page()
        log_in(page, "admin", password)
        # Asked at login: the only page is the password change.
        page.get_by_role("heading", name="Choose a new password").wait_for()
        assert "Accounts & audit" not in _sidebar(page)
        steps.shot(page, "forced change at login")
        page.get_by_label("Current password").fill(password)
        page.get_by_label("New password (at least 8 characters)").fill("first-admin-new-pass")
        page.get_by_label("Repeat the new password").fill("first-admin-new-pass")
        page.get_by_role("button", name="Change password").click()
        settle(page)
        page.get_by_text("Your password was changed.").wait_for()
        assert page.get_by_text("Please choose a new password").count() == 0

        go(page, "Accounts & audit")
        page.get_by_label("Username", exact=True).fill("e2e-new-doc")
        page.get_by_label("Role").click()
        page.get_by_role("option", name="clinician").click()
        page.get_by_label("Initial password").fill("doc-initial-pass-1")
        page.get_by_role("button", name="Create account").click()
        settle(page)
        page.get_by_text("Created clinician account e2e-new-doc").wait_for()
        # The accounts list (table and chooser, read together) has it at once.
        page.get_by_label("Account", exact=True).click()
        page.get_by_role("option", name="e2e-new-doc").wait_for()
        steps.shot(page, "account created")
    finally:
        context.close()

    doctor = browser.new_context(viewport=VIEWPORT, base_url=first_start.url)
    try:
        page = doctor.new_page()
        log_in(page, "e2e-new-doc", "doc-initial-pass-1")
        page.get_by_role("heading", name="Choose a new password").wait_for()
        assert "Teleconsult" not in _sidebar(page)
    finally:
        doctor.close()
