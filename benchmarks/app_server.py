"""A throw-away ``streamlit run server.py`` and the browser that drives it.

The browser tests (``tests/e2e``) and the page benchmark (``bench_pages``) start the app the
same way ``make run`` does, on a free port, and wait for its health route; the system Chromium
(``/usr/bin/chromium``, installed by ``.ci/install_browser.sh``) runs with the same flags in
both. It lives here, not under ``tests/``, so that benchmarks never import test modules.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class ServerNotReady(RuntimeError):
    """The server exited, or did not answer its health route in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(url: str) -> bool:
    """Whether the Streamlit server at ``url`` answers its health route."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ("" when it does not exist)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def streamlit_server(
    env: dict[str, str], log: Path, timeout_s: float
) -> Iterator[tuple[str, float]]:
    """Run ``streamlit run server.py`` on a free port until the block ends.

    Args:
        env: The server's whole environment.
        log: File receiving the server's stdout and stderr.
        timeout_s: How long the server may take to answer its health route.

    Yields:
        The server's base URL (``http://127.0.0.1:PORT``) and the seconds from launch to its
        first healthy answer.

    Raises:
        ServerNotReady: The server exited or stayed unhealthy; the message ends with the log's
            tail.
    """
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", "server.py",
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true", "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with open(log, "w") as handle:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT
        )
    try:
        while not healthy(url):
            if process.poll() is not None:
                raise ServerNotReady(f"streamlit exited with {process.returncode}:\n{tail(log)}")
            if time.perf_counter() - started > timeout_s:
                raise ServerNotReady(f"streamlit not healthy after {timeout_s} s:\n{tail(log)}")
            time.sleep(0.1)
        yield url, time.perf_counter() - started
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
