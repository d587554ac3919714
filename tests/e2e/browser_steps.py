"""Helpers for driving the Streamlit app in the end-to-end tests: waiting, screenshots, and
the steps many tests share (sidebar navigation, registering, logging in)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from benchmarks.data_editor import open_cell_list

#: How long Streamlit's "running" indicator must stay away before a rerun counts as finished.
QUIET_MS = 600
#: Longest wait for one script run; model loading on a busy 2-core CPU can take a while.
RUN_TIMEOUT_MS = 180_000
#: Tallest screenshot, in pixels.
_MAX_SHOT_HEIGHT = 6000


def wait_for_app(page: object, quiet_ms: int = QUIET_MS) -> None:
    """Wait until Streamlit is connected and its script has stayed idle for ``quiet_ms``.

    Streamlit marks its root element with ``data-test-script-state`` (``running``,
    ``notRunning``, ...) and ``data-test-connection-state``; a widget interaction
    starts a rerun a moment after the event, so idleness must last a while
    before it counts.

    Args:
        page: A Playwright page showing the app.
        quiet_ms: How long the script must stay idle.

    Raises:
        TimeoutError: The app did not settle within :data:`RUN_TIMEOUT_MS`.
    """
    app = page.locator('[data-testid="stApp"]')
    app.and_(page.locator('[data-test-connection-state="CONNECTED"]')).wait_for(state="attached")
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        idle = app.get_attribute("data-test-script-state") == "notRunning"
        now = time.monotonic()
        if not idle:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif (now - quiet_since) * 1000 >= quiet_ms:
            return
        page.wait_for_timeout(100)
    raise TimeoutError("the app kept running for longer than the end-to-end timeout")


def _next_frames(page: object, frames: int = 2) -> None:
    """Wait until the browser has drawn ``frames`` more frames (the layout after a resize)."""
    page.evaluate(
        "n => new Promise(done => { const step = k => k ? requestAnimationFrame(() => step(k - 1))"
        " : done(); step(n); })",
        frames,
    )


def settle(page: object) -> None:
    """Wait for the app, including the cookie round trip (a page load) after a login or logout."""
    page.wait_for_load_state()
    wait_for_app(page)


def go(page: object, link: str) -> None:
    """Open a page through the sidebar navigation, which keeps the Streamlit session."""
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=link).first.click()
    settle(page)


def no_exception(page: object) -> None:
    """Assert that the page shows no Streamlit exception box (its text is the message)."""
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()


def register_patient(
    page: object, username: str, password: str, birth_year: int | None = None
) -> None:
    """Create a patient account on the login page; returns logged in, on the home page.

    Args:
        page: A Playwright page of a fresh browser context.
        username: The new account's name.
        password: Its password.
        birth_year: Typed into the optional birth-year field, when given.
    """
    page.goto("/")
    settle(page)
    go(page, "Log in or register")
    page.get_by_role("tab", name="Create a patient account").click()
    page.get_by_label("Choose a username").fill(username)
    page.get_by_label("Choose a password (at least 8 characters)").fill(password)
    page.get_by_label("Repeat the password").fill(password)
    if birth_year is not None:
        page.get_by_role("spinbutton", name="Year you were born (optional)").fill(str(birth_year))
    page.get_by_role("button", name="Create account").click()
    # Back on the home page with the cookie set (the login page is left behind).
    page.wait_for_url(re.compile(r".*/$"))
    settle(page)
    page.locator('[data-testid="stSidebar"]').get_by_text(f"Logged in as {username}").wait_for()


def log_in(page: object, username: str, password: str) -> None:
    """Log in on the login page; returns logged in, on the home page with the cookie set."""
    page.goto("/login")
    settle(page)
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(re.compile(r".*/$"))
    settle(page)
    page.locator('[data-testid="stSidebar"]').get_by_text(f"Logged in as {username}").wait_for()


def choose_files(page: object, paths: list[Path]) -> None:
    """Hand files to the Upload page's uploader and wait for its table of them."""
    # The films' uploader takes several files; the CD's (a ZIP) one at a time.
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"][multiple]')
    uploader.set_input_files([str(path) for path in paths])
    wait_for_app(page)
    page.get_by_role("heading", name="Your files").wait_for()


class Steps:
    """Numbered screenshots of one test's steps, saved under ``test-artifacts/e2e/``."""

    def __init__(self, folder: Path, test_name: str) -> None:
        self._folder = folder
        self._prefix = re.sub(r"[^A-Za-z0-9_-]+", "_", test_name)
        self._count = 0

    def shot(self, page: object, label: str) -> Path:
        """Wait for the app to settle, then save a full-page screenshot named after ``label``."""
        wait_for_app(page)
        self._count += 1
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", label)
        path = self._folder / f"{self._prefix}-{self._count:02d}-{name}.png"
        # Streamlit scrolls inside its main container, so a "full page" shot would stop at
        # the viewport: grow the viewport to the content for the shot, then restore it.
        viewport = page.viewport_size
        content = page.evaluate(
            "() => document.querySelector('[data-testid=\"stMainBlockContainer\"]')"
            "?.scrollHeight ?? 0"
        )
        tall = min(max(viewport["height"], int(content) + 200), _MAX_SHOT_HEIGHT)
        page.set_viewport_size({"width": viewport["width"], "height": tall})
        _next_frames(page)
        page.screenshot(path=str(path), full_page=True)
        page.set_viewport_size(viewport)
        return path


def pick_view(page: object, row: int, label: str) -> None:
    """Choose ``label`` in the View column of the upload table's ``row`` (counted from 0).

    The table is a canvas grid: open the row's View cell (the fourth column) until its list
    shows the label (:func:`benchmarks.data_editor.open_cell_list`), type the label to narrow
    the list to it, and choose it with Enter.

    Args:
        page: A Playwright page showing the Upload page's table.
        row: The file's row.
        label: The view's words, e.g. ``"Side (lateral)"``.
    """
    # The grid is redrawn by every rerun: start on a settled table, not one being replaced.
    wait_for_app(page)
    open_cell_list(page, row, 3, label, RUN_TIMEOUT_MS)
    page.keyboard.type(label)
    page.keyboard.press("Enter")
    wait_for_app(page)
