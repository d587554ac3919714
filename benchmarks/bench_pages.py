"""Benchmark: cold start and every page's render time in a real browser, for each role.

Starts the app as ``make run`` does (``streamlit run server.py``, here on a free port with a
throw-away data folder and master key) and drives the system Chromium (``/usr/bin/chromium``,
the flags of ``tests/e2e``) with Playwright. Before the server starts, the command line
(``python -m storage.cli``) creates a patient, a clinician, an analyst and an admin, and
imports the patient's scans from ``SHARED_DATA_DIR/samples``; the patient shares them with the
clinician. So the server process starts cold, and no set-up work competes with the timings.

Figures (targets, read and not asserted: first page <= 5 s and first analysis <= 2 s after
the server is ready, each page warm <= 1 s):

* server ready: launch to the first ``/_stcore/health`` answer (the server warms up, see
  ``pages.ui.warm_up``, before it answers);
* first page: the home page's first render in a fresh browser tab (HTML, scripts, websocket
  and the script run), right after the server is ready;
* first Upload & analyze page: the patient's first visit, right after logging in;
* first analysis: the patient's first upload of the 1024x1024 CR DICOM sample on Upload &
  analyze, from handing over the file to the results, heatmap included, being on the page;
* each page of each role: the first visit in the session and the median of the next
  ``--repeats`` visits, from the click on the sidebar link to the end of the script run;
* interactions (target: median <= 300 ms, event to the end of the run): a view chosen in a
  cell of a 7-film series table, the timeline's rise slider moved, the Compare pair switched
  (patient); a note added, a box drawn on the image (clinician, teleconsult). Each is
  repeated ``--repeats`` times (at least 5); st.fragment keeps each run to its part of the
  page.

A render ends when Streamlit's script-state attribute turns ``notRunning`` and stays so for
:data:`QUIET_MS` (the quiet wait is not counted); a ``MutationObserver`` in the page records
the moment, so the polling interval does not count either.

Run: ``.venv/bin/python benchmarks/bench_pages.py [--repeats N] [--interactions-only]`` (a
few minutes on two cores; about two without the page visits). The CPU is shared with
whatever else runs, so repeat a run before comparing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    # Run as a script: make the project importable.
    sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.app_server import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402
from benchmarks.data_editor import open_cell_list  # noqa: E402
from core.settings import load_settings  # noqa: E402
from storage.crypto import encode_master_key, new_master_key  # noqa: E402

#: Quiet time after a run before it counts as finished (not included in the figures).
QUIET_MS = 600
TIMEOUT_S = 180
#: A click after which no script run has ended this long is tried once more.
_NO_RUN_S = 20
REPEATS = 3
DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
#: (file, date, view) imported for the patient before the server starts.
PATIENT_SCANS = (
    ("00000001_000.png", "2024-01-15", "PA"),
    (DICOM, "2024-03-01", None),
    ("00027426_000.png", "2024-06-20", "PA"),
)
PASSWORD = "bench-Passw0rd-long-enough"
USERS = {
    "patient": "bench-patient",
    "clinician": "bench-clinician",
    "analyst": "bench-analyst",
    "admin": "bench-admin",
}

#: Milliseconds since the epoch in the browser's high-resolution clock; unlike
#: ``performance.now()`` alone, it keeps counting across the log-in's page reloads.
_CLOCK = "performance.timeOrigin + performance.now()"
#: Records when Streamlit's script starts and stops running.
_RUN_OBSERVER = f"""
window.__benchRuns = {{running: -1, idle: -1}};
new MutationObserver((records) => {{
  for (const record of records) {{
    const state = record.target.getAttribute('data-test-script-state');
    if (state === 'running') window.__benchRuns.running = {_CLOCK};
    else if (state === 'notRunning') window.__benchRuns.idle = {_CLOCK};
  }}
}}).observe(document, {{attributes: true, subtree: true,
                      attributeFilter: ['data-test-script-state']}});
"""


@dataclass
class PageTiming:
    """One page's render times for one role."""

    role: str
    page: str
    first_ms: float
    warm_ms: list[float]
    error: bool


def _environment(data_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "MASTER_KEY": encode_master_key(new_master_key()),
        "ADMIN_USERNAME": "bench-first-admin",
        "ADMIN_PASSWORD": PASSWORD,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)  # the throw-away SQLite database, never a shared server
    return env


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [sys.executable, "-m", "storage.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        input=stdin,
        text=True,
        check=True,
        capture_output=True,
    )


def _prepare(env: dict[str, str], samples: Path) -> None:
    """Users and the patient's scans through the command line; the patient shares them."""
    for role, name in USERS.items():
        _cli(env, "create-user", name, "--role", role, stdin=PASSWORD + "\n")
    for name, when, view in PATIENT_SCANS:
        extra = ["--view", view] if view else []
        _cli(env, "import-scan", "--user", USERS["patient"], "--date", when, *extra,
             str(samples / name))  # fmt: skip
    share = (
        "from core.settings import load_settings\n"
        "from storage import accounts, sharing\n"
        "from storage.bootstrap import open_database\n"
        "db = open_database(load_settings())\n"
        f"patient = accounts.find_actor(db, {USERS['patient']!r})\n"
        f"sharing.grant_access(db, patient, {USERS['clinician']!r})\n"
    )
    subprocess.run(
        [sys.executable, "-c", share], cwd=PROJECT_ROOT, env=env, check=True, capture_output=True
    )


def _settled(page: Any, start_ms: float, timeout_s: float = TIMEOUT_S) -> float:
    """Milliseconds from ``start_ms`` (:data:`_CLOCK`) to the end of the last script run.

    Raises:
        TimeoutError: No script run ended within ``timeout_s``.
    """
    from playwright.sync_api import Error as PlaywrightError

    app = page.locator('[data-testid="stApp"]')
    app.and_(page.locator('[data-test-connection-state="CONNECTED"]')).wait_for(
        state="attached", timeout=TIMEOUT_S * 1000
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            runs = page.evaluate(f"() => ({{...window.__benchRuns, now: {_CLOCK}}})")
            idle = app.get_attribute("data-test-script-state") == "notRunning"
        except PlaywrightError:
            # The page navigated (the log-in's cookie round trip): read the new document.
            page.wait_for_load_state()
            continue
        finished = runs["idle"] > start_ms and runs["idle"] >= runs["running"]
        if idle and finished and runs["now"] - runs["idle"] >= QUIET_MS:
            return float(runs["idle"] - start_ms)
        page.wait_for_timeout(50)
    raise TimeoutError("the app kept running past the benchmark's timeout")


def _now(page: Any) -> float:
    return float(page.evaluate(f"() => {_CLOCK}"))


def _opened(page: Any) -> float:
    """When the page's current document started loading, in :data:`_CLOCK` time."""
    return float(page.evaluate("() => performance.timeOrigin"))


def _has_exception(page: Any) -> bool:
    """Whether the page shows a traceback box; its first line goes to stderr to be fixed."""
    boxes = page.locator('[data-testid="stException"]')
    if boxes.count() == 0:
        return False
    first_line = boxes.first.inner_text().strip().splitlines()[:2]
    print(f"exception on {page.url}: {' '.join(first_line)}", file=sys.stderr, flush=True)
    return True


def _log_in(page: Any, username: str) -> float:
    """Log in on the log-in page; seconds from the click on "Log in" to being logged in."""
    page.goto("/login")
    _settled(page, _opened(page))
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    start = time.perf_counter()
    page.get_by_role("button", name="Log in", exact=True).click()
    page.get_by_text(f"Logged in as {username}").wait_for(timeout=TIMEOUT_S * 1000)
    elapsed = time.perf_counter() - start
    _settled(page, _opened(page))
    return elapsed


def _click_nav(page: Any, name: str) -> float:
    """Open a page from the sidebar; milliseconds until its script run ended."""
    link = page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=name).first
    start = _now(page)
    link.click()
    try:
        return _settled(page, start, _NO_RUN_S)
    except TimeoutError:
        # Rarely a click right after the log-in's reload starts no run; count from a second.
        print(f"{name}: no run {_NO_RUN_S} s after the click; clicking again", file=sys.stderr)
        start = _now(page)
        link.click()
        return _settled(page, start)


def _nav_names(page: Any) -> list[str]:
    links = page.locator('[data-testid="stSidebarNav"] a')
    # Each link's text is its icon's ligature name, then its title on the last line.
    names = [links.nth(i).inner_text().strip().splitlines()[-1] for i in range(links.count())]
    return [name.strip() for name in names if name.strip()]


def _first_analysis(page: Any, samples: Path, cold: dict[str, float]) -> None:
    """The first Upload & analyze page, then its first analysis of the DICOM, into ``cold``.

    The analysis is timed from handing the file to the uploader to the results on the page.
    """
    cold["first Upload & analyze page"] = _click_nav(page, "Upload & analyze") / 1000
    _progress(cold)
    # The films' uploader (several files); the other takes a CD's ZIP. A date in the name:
    # the sample DICOM's own Study Date is an anonymisation placeholder.
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"][multiple]')
    dated = Path(tempfile.mkdtemp(prefix="bench_upload_")) / "2024-03-01_chest.dcm"
    dated.write_bytes((samples / DICOM).read_bytes())
    start = _now(page)
    uploader.set_input_files(str(dated))
    elapsed = _settled(page, start)
    page.get_by_role("heading", name="Where the model looked").wait_for(timeout=5000)
    if _has_exception(page):
        raise RuntimeError("the upload page showed an exception")
    cold["first analysis (1024x1024 DICOM)"] = elapsed / 1000
    _progress(cold)


def _timed(page: Any, action: Any) -> float:
    """Milliseconds from ``action()`` (an event in the browser) to the end of its run."""
    start = _now(page)
    action()
    return _settled(page, start)


def _series_interactions(page: Any, samples: Path, repeats: int) -> dict[str, list[float]]:
    """A 7-film series on Upload & analyze: a view chosen in a table cell."""
    folder = Path(tempfile.mkdtemp(prefix="bench_series_"))
    # Seven different adult films none of which is in the record yet (an unchanged cell, or a
    # film already saved, would start no run).
    films = sorted((samples.parent / "nih_adult" / "test" / "No_findings").glob("*.jpeg"))[:7]
    paths = []
    for day, film in zip(range(1, 8), films, strict=True):
        path = folder / f"2025-02-{day:02d}_film{day}{film.suffix}"
        path.write_bytes(film.read_bytes())
        paths.append(path)
    _click_nav(page, "Upload & analyze")
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"][multiple]')
    _timed(page, lambda: uploader.set_input_files([str(p) for p in paths]))
    times: dict[str, list[float]] = {"cell edit: a view in a 7-film table": []}
    labels = ["Frontal (PA, standing)", "Frontal (AP)"]
    for attempt in range(repeats):
        row = attempt % 7
        label = labels[attempt % 2]
        open_cell_list(page, row, 3, label, TIMEOUT_S * 1000)
        page.keyboard.type(label)
        times["cell edit: a view in a 7-film table"].append(
            _timed(page, lambda: page.keyboard.press("Enter"))
        )
    return times


def _timeline_and_compare(page: Any, repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {
        "timeline: rise slider moved": [],
        "compare: pair switched": [],
    }
    _click_nav(page, "Timeline")
    page.get_by_text("Settings").first.click()
    page.get_by_role("slider").first.wait_for()
    slider = page.get_by_role("slider").first
    for attempt in range(repeats):
        slider.focus()
        key = "ArrowRight" if attempt % 2 == 0 else "ArrowLeft"
        times["timeline: rise slider moved"].append(_timed(page, lambda key=key: slider.press(key)))
    _click_nav(page, "Compare with prior")
    picker = page.locator('[data-testid="stSelectbox"]').nth(1)
    for _ in range(repeats):
        times["compare: pair switched"].append(_switch_option(page, picker))
    return times


def _switch_option(page: Any, picker: Any) -> float:
    """Choose another option of a select box; milliseconds from the click to the end of the run.

    A select box lists its options in a pop-over of its own; choosing the option already shown
    starts no run, and a click on a pop-over still opening can be lost, so an option whose
    run does not start is chosen again (each try waits at most 15 s).
    """
    for _ in range(3):
        picker.click()
        other = page.get_by_role("option", selected=False).first
        other.wait_for()
        start = _now(page)
        other.click()
        try:
            return _settled(page, start, timeout_s=15)
        except TimeoutError:
            page.keyboard.press("Escape")
    raise TimeoutError("choosing another option started no run, three times")


def _teleconsult_interactions(page: Any, repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"teleconsult: note added": [], "teleconsult: box drawn": []}
    _click_nav(page, "Teleconsult")
    _timed(page, page.get_by_role("button", name="Start session").click)
    # Switching tabs runs nothing on the server: click, and wait for the tab's content.
    page.get_by_role("tab", name="Notes").click()
    page.get_by_text("Box (drag on the image)").wait_for()
    _timed(page, page.get_by_text("Box (drag on the image)").click)
    for attempt in range(repeats):
        chart = page.locator('[data-testid="stPlotlyChart"]').last
        chart.scroll_into_view_if_needed()
        area = chart.locator(".nsewdrag").first.bounding_box()
        start = (area["x"] + area["width"] * 0.35, area["y"] + area["height"] * 0.55)
        end = (area["x"] + area["width"] * 0.55, area["y"] + area["height"] * 0.75)
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end, steps=5)
        times["teleconsult: box drawn"].append(_timed(page, page.mouse.up))
        page.get_by_label("Note (the patient will see it)").fill(f"bench note {attempt}")
        add = page.get_by_role("button", name="Add note")
        times["teleconsult: note added"].append(_timed(page, add.click))
    return times


def _context(browser: Any, url: str) -> Any:
    """A fresh browser context (its own cookies: one user) that records every script run."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=url)
    context.add_init_script(_RUN_OBSERVER)
    context.set_default_timeout(TIMEOUT_S * 1000)
    return context


def _interactions(browser: Any, url: str, samples: Path, repeats: int) -> dict[str, list[float]]:
    """Each interaction's times in milliseconds, patient's then clinician's."""
    times: dict[str, list[float]] = {}
    for role, steps in (
        ("patient", (lambda page: _series_interactions(page, samples, repeats),
                     lambda page: _timeline_and_compare(page, repeats))),
        ("clinician", (lambda page: _teleconsult_interactions(page, repeats),)),
    ):  # fmt: skip
        context = _context(browser, url)
        try:
            page = context.new_page()
            _log_in(page, USERS[role])
            for step in steps:
                measured = step(page)
                for name, values in measured.items():
                    print(f"{name}: {values}", file=sys.stderr, flush=True)
                times.update(measured)
        finally:
            context.close()
    return times


def _progress(figures: dict[str, float]) -> None:
    """The figure just measured, on stderr, so that a long run shows where it is."""
    name, value = list(figures.items())[-1]
    print(f"{name}: {value:.2f} s", file=sys.stderr, flush=True)


def _role_pages(browser: Any, url: str, role: str, repeats: int) -> list[PageTiming]:
    context = _context(browser, url)
    try:
        page = context.new_page()
        _log_in(page, USERS[role])
        names = _nav_names(page)
        timings = {name: PageTiming(role, name, 0.0, [], False) for name in names}
        for visit in range(repeats + 1):
            for name in names:
                elapsed = _click_nav(page, name)
                timing = timings[name]
                timing.error = timing.error or _has_exception(page)
                print(f"{role} {name}: {elapsed:.0f} ms", file=sys.stderr, flush=True)
                if visit == 0:
                    timing.first_ms = elapsed
                else:
                    timing.warm_ms.append(elapsed)
        return list(timings.values())
    finally:
        context.close()


def measure(
    repeats: int = REPEATS, *, interactions_only: bool = False
) -> tuple[dict[str, float], list[PageTiming], dict[str, list[float]]]:
    """Run the whole benchmark.

    Args:
        repeats: Warm visits per page after the first.
        interactions_only: Skip the visits of every page of every role.

    Returns:
        The cold-start figures in seconds, each role's page timings, and each interaction's
        times in milliseconds.

    Raises:
        FileNotFoundError: Chromium or the shared samples are missing.
        RuntimeError: The server did not start, or the first analysis failed.
    """
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        raise FileNotFoundError(f"{CHROMIUM} is missing; run .ci/install_browser.sh")
    samples = load_settings().shared_data_dir / "samples"
    if not (samples / DICOM).is_file():
        raise FileNotFoundError(f"the shared samples are missing in {samples}")
    work = Path(tempfile.mkdtemp(prefix="bench_pages_"))
    env = _environment(work / "data")
    _prepare(env, samples)
    cold: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            with streamlit_server(env, work / "server.log", TIMEOUT_S) as (url, ready_s):
                cold["server ready after launch"] = ready_s
                _progress(cold)
                context = _context(browser, url)
                page = context.new_page()
                page.goto("/")
                cold["first page (home) rendered"] = _settled(page, _opened(page)) / 1000
                _progress(cold)
                cold["first log-in (click to logged in)"] = _log_in(page, USERS["patient"])
                _progress(cold)
                _first_analysis(page, samples, cold)
                context.close()
                pages = (
                    []
                    if interactions_only
                    else [
                        timing
                        for role in USERS
                        for timing in _role_pages(browser, url, role, repeats)
                    ]
                )
                interactions = _interactions(browser, url, samples, max(repeats, 5))
        finally:
            browser.close()
    return cold, pages, interactions


def run() -> list[dict]:
    """Rows ``{"benchmark", "value", "unit"}`` for ``benchmarks/run_all.py``."""
    cold, pages, interactions = measure()
    rows = [
        {"benchmark": f"pages: cold start, {name}", "value": round(seconds, 2), "unit": "s"}
        for name, seconds in cold.items()
    ]
    for timing in pages:
        rows.append(
            {
                "benchmark": f"pages: {timing.role} {timing.page}, warm median",
                "value": round(statistics.median(timing.warm_ms)),
                "unit": "ms",
            }
        )
    for name, values in interactions.items():
        rows.append(
            {
                "benchmark": f"pages: interaction, {name}, median",
                "value": round(statistics.median(values)),
                "unit": "ms",
            }
        )
    return rows


def _print(
    cold: dict[str, float],
    pages: list[PageTiming],
    interactions: dict[str, list[float]],
    repeats: int,
) -> None:
    load = os.getloadavg()
    print(
        f"CPU: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        "(shared with other work)\n"
    )
    print(f"{'cold start':<40} {'seconds':>8}")
    for name, seconds in cold.items():
        print(f"{name:<40} {seconds:>8.2f}")
    print(
        f"\n{'role':<10} {'page':<24} {'first ms':>9} {f'warm median of {repeats}':>19} "
        f"{'warm max':>9}"
    )
    for timing in pages:
        flag = "  (exception shown)" if timing.error else ""
        print(
            f"{timing.role:<10} {timing.page:<24} {timing.first_ms:>9.0f} "
            f"{statistics.median(timing.warm_ms):>19.0f} {max(timing.warm_ms):>9.0f}{flag}"
        )
    print(f"\n{'interaction':<45} {'runs':>5} {'median ms':>10} {'max ms':>8}")
    for name, values in interactions.items():
        print(f"{name:<45} {len(values):>5} {statistics.median(values):>10.0f} {max(values):>8.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS, help="warm visits per page")
    parser.add_argument(
        "--interactions-only",
        action="store_true",
        help="cold start and interactions only, no page visits (about a minute)",
    )
    arguments = parser.parse_args()
    _print(
        *measure(arguments.repeats, interactions_only=arguments.interactions_only),
        arguments.repeats,
    )
