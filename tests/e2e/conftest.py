"""End-to-end harness: a real Streamlit server and the system Chromium driven by Playwright.

The server runs ``server.py`` (``streamlit_app.py`` and the session-cookie routes) on a free
port with a throw-away data folder, master key and first admin; the browser is ``/usr/bin/chromium``
(install it with ``.ci/install_browser.sh``; ``playwright install`` is never
used). Tests skip with the reason when Chromium is missing. Every step's screenshot goes to
``test-artifacts/e2e/`` (gitignored).

Run: ``.venv/bin/python -m pytest tests/e2e -m e2e -q``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.app_server import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PROJECT_ROOT,
    ServerNotReady,
    streamlit_server,
)
from storage.crypto import encode_master_key, new_master_key
from tests.e2e.browser_steps import RUN_TIMEOUT_MS, Steps

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "e2e"
ADMIN_USERNAME = "e2e-admin"
ADMIN_PASSWORD = "e2e-Admin-passw0rd!"
_STARTUP_SECONDS = 180


@dataclass(frozen=True)
class AppServer:
    """A running Streamlit app.

    Attributes:
        url: Base URL, e.g. ``http://127.0.0.1:8765``.
        data_dir: The server's ``DATA_DIR`` (database, blobs).
        log: File receiving the server's stdout and stderr.
    """

    url: str
    data_dir: Path
    log: Path


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The screenshot folder, emptied of the previous run's images."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    return ARTIFACTS


@contextmanager
def serve(data_dir: Path, log: Path, **settings: str) -> Iterator[AppServer]:
    """Run ``streamlit run server.py`` on a free port until the block ends.

    Args:
        data_dir: The server's ``DATA_DIR``.
        log: File receiving the server's stdout and stderr.
        **settings: Environment variables for the app (a ``None``-free mapping); ``DATA_DIR``,
            a fresh ``MASTER_KEY`` and unbuffered output are added.

    Yields:
        The healthy server.
    """
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "MASTER_KEY": encode_master_key(new_master_key()),
        "PYTHONUNBUFFERED": "1",
        **settings,
    }
    # The app's own database must not be a shared server's: force the SQLite default.
    env.pop("DATABASE_URL", None)
    if "ADMIN_PASSWORD" not in settings:
        env.pop("ADMIN_PASSWORD", None)
    try:
        with streamlit_server(env, log, _STARTUP_SECONDS) as (url, _):
            yield AppServer(url=url, data_dir=data_dir, log=log)
    except ServerNotReady as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[AppServer]:
    """The shared server, with a first admin of known password."""
    with serve(
        tmp_path_factory.mktemp("e2e-data"),
        artifacts / "server.log",
        ADMIN_USERNAME=ADMIN_USERNAME,
        ADMIN_PASSWORD=ADMIN_PASSWORD,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless system Chromium; skips when it is not installed."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing; run .ci/install_browser.sh")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture()
def new_page(browser: object, app_server: AppServer) -> Iterator[object]:
    """A factory of pages, each in its own browser context (own cookies: one user each)."""
    contexts = []

    def make() -> object:
        context = browser.new_context(
            viewport={"width": 1400, "height": 1000}, base_url=app_server.url
        )
        context.set_default_timeout(RUN_TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture()
def steps(artifacts: Path, request: pytest.FixtureRequest) -> Steps:
    """Screenshot recorder for the current test."""
    return Steps(artifacts, request.node.name)
