"""Load test: 20 concurrent patient sessions storing and listing scans.

Each session is a thread with its own logged-in patient that stores 5 scans (a 512x512
image with a classification each, through ``services.imports.save_decoded_scan`` as the upload
page does) and lists its scans after every store (``storage.scans.list_scans``, as the timeline
does). Afterwards the run is checked: no errors, no lost or duplicated rows (every patient has
exactly 5 scans with the 5 expected file names and readable results, one image file per
scan) and an intact audit chain. Runs on SQLite (a temporary DATA_DIR) and, when
``TEST_POSTGRES_URL`` is set, on PostgreSQL (a temporary schema).

Run: ``.venv/bin/python benchmarks/bench_load.py``.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.findings import FINDINGS
from core.imaging import DecodedScan, ScanMetadata
from core.settings import load_settings
from core.views import View
from services.imports import save_decoded_scan
from storage import accounts, audit, schema
from storage.actor import Actor
from storage.bootstrap import open_database
from storage.db import Database
from storage.results import ResultIn
from storage.scans import list_scans
from tests.storage.conftest import empty_backend

#: Report names of the backends, and the kinds the storage tests' ``empty_backend`` takes.
_KINDS = {"sqlite": "sqlite", "postgresql": "postgres"}

N_SESSIONS = 20
SCANS_PER_SESSION = 5
IMAGE_SIZE = 512
PASSWORD = "load test password"


@dataclass
class LoadReport:
    """What one backend's run measured and found."""

    backend: str
    wall_s: float
    save_s: list[float] = field(default_factory=list)
    list_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def scans_per_s(self) -> float:
        """Scans stored per second over the concurrent phase."""
        return len(self.save_s) / self.wall_s if self.wall_s else 0.0


def _result(session: int, scan: int) -> ResultIn:
    """A distinct, recognisable classification per (session, scan)."""
    p = round(0.01 * (session + 1) + 0.001 * scan, 6)
    return ResultIn(
        probabilities={**dict.fromkeys(FINDINGS, 0.05), "pneumonia": p},
        model_name="load-test",
        model_version="1",
        checkpoint_sha256="ab" * 32,
        ood_score=0.1,
        thresholds=dict.fromkeys(FINDINGS, 0.5),
    )


def _filename(scan: int) -> str:
    return f"scan-{scan}.png"


def _session(
    db: Database,
    index: int,
    username: str,
    barrier: threading.Barrier,
    report: LoadReport,
    lock: threading.Lock,
) -> None:
    """One user session: log in, then store and list scans; failures are recorded."""
    rng = np.random.default_rng(index)
    try:
        actor = accounts.authenticate(db, username, PASSWORD, f"10.0.0.{index}")
        barrier.wait()
        for scan in range(SCANS_PER_SESSION):
            decoded = DecodedScan(
                rng.random((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32),
                ScanMetadata(source_format="png", width=IMAGE_SIZE, height=IMAGE_SIZE),
            )
            start = time.perf_counter()
            save_decoded_scan(
                db,
                actor,
                decoded,
                scan_date=date(2025, 1, 1) + timedelta(days=scan),
                filename=_filename(scan),
                view=View.PA,
                result=_result(index, scan),
            )
            saved = time.perf_counter()
            list_scans(db, actor, actor.user_id)
            listed = time.perf_counter()
            with lock:
                report.save_s.append(saved - start)
                report.list_s.append(listed - saved)
    except BaseException as exc:  # every failure counts; the run reports them all
        with lock:
            report.errors.append(f"session {index}: {type(exc).__name__}: {exc}")
        barrier.abort()


def run_load(db: Database, backend: str, sessions: int = N_SESSIONS) -> LoadReport:
    """Run the concurrent sessions against an opened, empty database and check the outcome.

    Args:
        db: Database handle (shared by every session, as in the app).
        backend: Name for the report.
        sessions: Number of concurrent patient sessions.

    Returns:
        Latencies, errors and integrity problems found.
    """
    usernames = [f"load{i:02d}" for i in range(sessions)]
    actors = [accounts.register(db, name, PASSWORD) for name in usernames]
    report = LoadReport(backend, 0.0)
    lock = threading.Lock()
    # The clock starts when every session is logged in (the barrier's action).
    started: list[float] = []
    barrier = threading.Barrier(sessions, action=lambda: started.append(time.perf_counter()))
    threads = [
        threading.Thread(target=_session, args=(db, i, name, barrier, report, lock))
        for i, name in enumerate(usernames)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.wall_s = time.perf_counter() - started[0] if started else 0.0
    report.problems = _integrity_problems(db, actors)
    return report


def _integrity_problems(db: Database, actors: list[Actor]) -> list[str]:
    """Lost or duplicated rows, unreadable results, stray image files, a broken audit chain."""
    problems = []
    expected_files = sorted(_filename(s) for s in range(SCANS_PER_SESSION))
    for index, actor in enumerate(actors):
        scans = list_scans(db, actor, actor.user_id)
        if sorted(s.filename for s in scans) != expected_files:
            problems.append(f"{actor.username} has {[s.filename for s in scans]}")
            continue
        for scan in scans:
            scan_index = int(scan.filename.split("-")[1].split(".")[0])
            got = [r.probabilities for r in scan.results]
            if got != [_result(index, scan_index).probabilities]:
                problems.append(f"{actor.username} {scan.filename} has results {got}")
    with db.engine.connect() as conn:
        scan_rows = conn.execute(sa.select(sa.func.count()).select_from(schema.Scan)).scalar_one()
        result_rows = conn.execute(
            sa.select(sa.func.count()).select_from(schema.Result)
        ).scalar_one()
    wanted = len(actors) * SCANS_PER_SESSION
    blob_files = sum(1 for _ in db.blobs.list_objects())
    for name, count in (
        ("scan rows", scan_rows),
        ("result rows", result_rows),
        ("image files", blob_files),
    ):
        if count != wanted:
            problems.append(f"{count} {name}, expected {wanted}")
    chain = audit.verify_chain(db)
    if not chain.ok:
        problems.append(f"audit chain broken at event {chain.first_bad_id}: {chain.reason}")
    return problems


@contextmanager
def _database(backend: str) -> Iterator[Database]:
    """A fresh database on ``backend`` in a temporary DATA_DIR (and PostgreSQL schema)."""
    with tempfile.TemporaryDirectory() as tmp, empty_backend(_KINDS[backend], Path(tmp)) as url:
        env = {
            "DATA_DIR": tmp,
            "DATABASE_URL": url,
            "ADMIN_PASSWORD": "load admin pass",
            "MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
        db = open_database(load_settings(env))
        try:
            yield db
        finally:
            db.close()


def backends() -> list[str]:
    """SQLite always; PostgreSQL when ``TEST_POSTGRES_URL`` is set."""
    return ["sqlite"] + (["postgresql"] if os.environ.get("TEST_POSTGRES_URL") else [])


def _rows(report: LoadReport) -> list[dict]:
    label = f"load {report.backend} ({N_SESSIONS} sessions x {SCANS_PER_SESSION} scans)"
    rows = [
        {"benchmark": f"{label}: errors", "value": len(report.errors), "unit": "count"},
        {
            "benchmark": f"{label}: integrity problems",
            "value": len(report.problems),
            "unit": "count",
        },
        {
            "benchmark": f"{label}: throughput",
            "value": round(report.scans_per_s, 2),
            "unit": "scans/s",
        },
    ]
    for name, values in (("save_scan", report.save_s), ("list_scans", report.list_s)):
        if not values:
            continue
        for stat, value in (
            ("p50", np.percentile(values, 50)),
            ("p95", np.percentile(values, 95)),
            ("max", max(values)),
        ):
            rows.append(
                {
                    "benchmark": f"{label}: {name} {stat}",
                    "value": round(value * 1000, 1),
                    "unit": "ms",
                }
            )
    return rows


def run() -> list[dict]:
    """Run the load test on every available backend.

    Returns:
        Rows ``{"benchmark", "value", "unit"}``: errors and integrity problems (both must be
        0), throughput and p50/p95/max latency of ``save_scan`` and ``list_scans``.
    """
    rows = []
    for backend in backends():
        with _database(backend) as db:
            report = run_load(db, backend)
        for line in report.errors[:5] + report.problems[:5]:
            print(f"{backend}: {line}", file=sys.stderr)
        rows.extend(_rows(report))
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['benchmark']}: {row['value']} {row['unit']}")
