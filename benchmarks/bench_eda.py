"""Benchmark: first render and reruns of the NIH ChestX-ray14 analyst page, through AppTest.

Run: ``.venv/bin/python benchmarks/bench_eda.py``. Prints one line per figure;
``run()`` returns the same rows for ``benchmarks/run_all.py``. Targets (read,
not asserted): first render <= 2 s, rerun <= 0.2 s.

"First render" is measured in a warm process (Streamlit, pandas and plotly
already imported, as in a running server) with every Streamlit cache cleared,
so it includes reading and parsing the 112,120-row metadata file.
"""

from __future__ import annotations

import base64
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PAGE = Path(__file__).resolve().parent.parent / "pages" / "analyst_nih.py"
RERUNS = 10
TIMEOUT_S = 120


def _analyst():
    """A fresh analyst on a private temporary database (the page checks the account exists)."""
    os.environ.update(
        {
            "DATA_DIR": tempfile.mkdtemp(prefix="bench_eda_"),
            "DATABASE_URL": "",
            "MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "ADMIN_PASSWORD": "bench-admin-password",
        }
    )
    # Imported here so that the settings are read after the environment above is set.
    from core.settings import load_settings
    from storage import accounts
    from storage.bootstrap import open_database

    db = open_database(load_settings())
    # An operator-made account: one an admin creates must change its password first.
    return accounts.operator_create_user(db, "bench_analyst", "a long enough pass", "analyst")


def _app(analyst):
    from streamlit.testing.v1 import AppTest

    from pages import ui
    from storage import sessions

    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT_S)
    # A real server-side session, under the key pages.ui keeps the browser's token in.
    at.session_state["session_token"] = sessions.start_session(ui.get_database(), analyst, None)
    return at


def _timed(action) -> float:
    start = time.perf_counter()
    at = action()
    elapsed = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(at.exception[0].message)
    return elapsed


def run() -> list[dict]:
    """Measure the NIH page.

    Returns:
        Rows ``{"benchmark", "value", "unit"}``: first render (cold caches),
        median rerun with unchanged filters, and median rerun after a filter change.
    """
    import streamlit as st

    analyst = _analyst()
    # Warm the process (imports, Streamlit runtime), then clear the page's caches so the
    # measured run reads and parses the metadata file again, as on a server's first visit.
    _app(analyst).run()
    st.cache_data.clear()
    st.cache_resource.clear()
    from pages import ui

    ui.get_database()  # the shared database handle is not part of this page's first render

    at = _app(analyst)
    first = _timed(at.run)
    reruns = [_timed(at.run) for _ in range(RERUNS)]
    filtered = []
    for low in range(20, 20 + RERUNS):
        at.slider[0].set_value((low, 80))
        filtered.append(_timed(at.run))
    return [
        {"benchmark": "nih_page_first_render", "value": round(first, 3), "unit": "s"},
        {
            "benchmark": "nih_page_rerun_median",
            "value": round(statistics.median(reruns), 3),
            "unit": "s",
        },
        {
            "benchmark": "nih_page_new_filter_median",
            "value": round(statistics.median(filtered), 3),
            "unit": "s",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['benchmark']}: {row['value']} {row['unit']}")
