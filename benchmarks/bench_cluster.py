"""Cluster load: worker processes as app replicas over one PostgreSQL and one S3 bucket.

Each worker process is one replica: it opens storage itself (as ``streamlit run`` does) and
serves its share of the sessions from a few threads (Streamlit serves each browser session
on its own thread). A session logs in, imports 5 real radiographs through
``services.imports.import_scans`` (the two NIH PNGs of ``samples/`` and three NIH JPEGs of
``nih_adult/``, all 512x512 with view PA, no model: inference is measured by bench_model.py) and
reads its timeline after each import (``storage.scans.list_scans`` + ``core.timeline``, as
the timeline page does). The same 60 sessions run with 1, 2 and 3 workers, each run on a
fresh PostgreSQL schema and a fresh bucket prefix, and each run is then checked: errors,
lost or duplicated rows, objects in the bucket against rows in the database, every row's
object present, the audit chain intact.

Needs ``TEST_POSTGRES_URL`` and ``TEST_S3_URL`` (storage/POSTGRES_SETUP.sh and
storage/SEAWEEDFS_SETUP.sh print them) and ../shared/data.

Run: ``.venv/bin/python benchmarks/bench_cluster.py [--sessions 60] [--workers 1 2 3]``.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.settings import load_settings
from core.timeline import sort_scans
from core.views import View
from services.imports import ScanFile, import_scans
from storage import accounts, audit, schema
from storage.blobs import open_blob_store
from storage.bootstrap import open_database
from storage.scans import list_scans
from tests.s3_server import s3_prefix
from tests.storage.conftest import empty_backend

PASSWORD = "cluster bench password"
SCANS_PER_SESSION = 5
#: Threads per worker: concurrent browser sessions one replica serves.
THREADS_PER_WORKER = 4
STEPS = ("login", "import", "timeline")


@dataclass
class WorkerResult:
    """What one worker measured."""

    timings: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STEPS})
    errors: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0


@dataclass
class RunReport:
    """One run (a number of workers) and what its check found."""

    workers: int
    sessions: int
    wall_s: float
    timings: dict[str, list[float]]
    errors: list[str]
    scans: int
    lost: int
    duplicated: int
    rows: int
    objects: int
    missing_objects: int
    chain_ok: bool
    peak_rss_mb: float

    @property
    def scans_per_s(self) -> float:
        """Scans stored per second of wall time."""
        return self.scans / self.wall_s if self.wall_s else 0.0


def _files(shared: Path) -> list[tuple[str, bytes]]:
    """Five distinct real radiographs (name, bytes)."""
    pngs = sorted((shared / "samples").glob("000*.png"))[:2]
    films = sorted((shared / "nih_adult" / "test").glob("*/*.jpeg"))[: SCANS_PER_SESSION - 2]
    chosen = pngs + films
    if len(chosen) != SCANS_PER_SESSION:
        sys.exit(f"need {SCANS_PER_SESSION} NIH files under {shared}, found {len(chosen)}")
    return [(path.name, path.read_bytes()) for path in chosen]


def _username(index: int) -> str:
    return f"cluster{index:03d}"


def _session(db, index: int, files: list[tuple[str, bytes]], result: WorkerResult) -> None:
    """One browser session: log in, import the files one upload at a time, read the timeline."""
    try:
        start = time.perf_counter()
        actor = accounts.authenticate(db, _username(index), PASSWORD, f"bench-{index}")
        result.timings["login"].append(time.perf_counter() - start)
        for name, data in files:
            start = time.perf_counter()
            report = import_scans(
                db,
                actor,
                [ScanFile(name, lambda data=data: data, view=View.PA)],
                None,
                scan_date=date(2026, 1, 1),
            )
            result.timings["import"].append(time.perf_counter() - start)
            if not report.all_ok:
                result.errors.append(f"session {index} {name}: {report.items[0].error}")
            start = time.perf_counter()
            sort_scans(list_scans(db, actor, actor.user_id))
            result.timings["timeline"].append(time.perf_counter() - start)
    except Exception as exc:  # every failure counts; the run reports them all
        result.errors.append(f"session {index}: {type(exc).__name__}: {exc}")


def _worker(env: dict[str, str], indices: list[int], files, ready, results) -> None:
    """One replica: open storage, wait until every replica is ready, serve its sessions."""
    db = open_database(load_settings(env), bootstrap_admin=False)
    result = WorkerResult()
    try:
        ready.wait()
        with ThreadPoolExecutor(THREADS_PER_WORKER) as pool:
            for index in indices:
                pool.submit(_session, db, index, files, result)
    finally:
        db.close()
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results.put(result)


def run(workers: int, sessions: int, files: list[tuple[str, bytes]]) -> RunReport:
    """Run ``sessions`` sessions on ``workers`` processes against fresh storage and check it."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        empty_backend("postgres", Path(tmp)) as url,
        s3_prefix() as s3,
    ):
        env = {
            **s3,
            "DATA_DIR": tmp,
            "DATABASE_URL": url,
            "MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "ADMIN_PASSWORD": secrets.token_urlsafe(16),
            "REGISTRATIONS_PER_HOUR": "100000",
            "REGISTRATIONS_PER_CLIENT_PER_HOUR": "100000",
        }
        db = open_database(load_settings(env))
        actors = [accounts.register(db, _username(i), PASSWORD) for i in range(sessions)]
        shares = [list(range(w, sessions, workers)) for w in range(workers)]
        context = multiprocessing.get_context("spawn")  # fresh processes, like replicas
        ready, queue = context.Barrier(workers + 1), context.Queue()
        processes = [
            context.Process(target=_worker, args=(env, share, files, ready, queue))
            for share in shares
        ]
        for process in processes:
            process.start()
        # Every worker opens storage first; the clock starts when all are ready.
        ready.wait()
        start = time.perf_counter()
        results = [queue.get() for _ in processes]
        wall = time.perf_counter() - start
        for process in processes:
            process.join()
        report = _check(db, workers, sessions, wall, results, actors, files)
        db.close()
    return report


def _check(db, workers, sessions, wall, results, actors, files) -> RunReport:
    timings = {step: [t for r in results for t in r.timings[step]] for step in STEPS}
    errors = [e for r in results for e in r.errors]
    with db.transaction() as session:
        rows = session.exec(sa.select(schema.Scan.owner_id, schema.Scan.blob_name)).all()
    names = [blob for _, blob in rows]
    objects = {info.name for info in db.blobs.list_objects()}
    per_owner = Counter(owner for owner, _ in rows)
    expected = len(files)
    lost = sum(max(0, expected - per_owner.get(a.user_id, 0)) for a in actors)
    filenames = Counter()
    for actor in actors:
        for scan in list_scans(db, actor, actor.user_id):
            filenames[(actor.user_id, scan.filename)] += 1
    duplicated = sum(count - 1 for count in filenames.values() if count > 1)
    return RunReport(
        workers=workers,
        sessions=sessions,
        wall_s=wall,
        timings=timings,
        errors=errors,
        scans=len(rows),
        lost=lost,
        duplicated=duplicated,
        rows=len(rows),
        objects=len(objects),
        missing_objects=len(set(names) - objects),
        chain_ok=audit.verify_chain(db).ok,
        peak_rss_mb=max(r.peak_rss_mb for r in results),
    )


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _print(reports: list[RunReport]) -> None:
    print(
        f"{'workers':>7} {'sessions':>8} {'scans':>5} {'errors':>6} {'lost':>4} {'dup':>3} "
        f"{'rows':>4} {'objects':>7} {'missing':>7} {'chain':>5} {'wall s':>6} {'scans/s':>7} "
        f"{'x1':>5} {'RSS MB':>6}"
    )
    base = reports[0].scans_per_s if reports else 0.0
    for r in reports:
        print(
            f"{r.workers:>7} {r.sessions:>8} {r.scans:>5} {len(r.errors):>6} {r.lost:>4} "
            f"{r.duplicated:>3} {r.rows:>4} {r.objects:>7} {r.missing_objects:>7} "
            f"{'ok' if r.chain_ok else 'BAD':>5} {r.wall_s:>6.1f} {r.scans_per_s:>7.2f} "
            f"{r.scans_per_s / base if base else 0:>5.2f} {r.peak_rss_mb:>6.0f}"
        )
    print()
    print(f"{'workers':>7} " + " ".join(f"{s + ' p50/p95 ms':>24}" for s in STEPS))
    for r in reports:
        cells = [
            f"{_pct(r.timings[s], 50) * 1000:>11.0f} /{_pct(r.timings[s], 95) * 1000:>10.0f}"
            for s in STEPS
        ]
        print(f"{r.workers:>7} " + " ".join(f"{c:>24}" for c in cells))
    for r in reports:
        for error in r.errors[:5]:
            print(f"error ({r.workers} workers): {error}")


def measure_stores(objects: int = 200, size: int = 400_000) -> None:
    """The stores alone, 4 threads: S3 PUT and GET of ``size``-byte objects, PostgreSQL commits."""
    payload = secrets.token_bytes(size)
    with (
        tempfile.TemporaryDirectory() as tmp,
        empty_backend("postgres", Path(tmp)) as url,
        s3_prefix() as s3,
    ):
        settings = load_settings({**s3, "DATA_DIR": tmp, "DATABASE_URL": url})
        store = open_blob_store(settings)
        names = [store.new_name() for _ in range(objects)]
        with ThreadPoolExecutor(THREADS_PER_WORKER) as pool:
            start = time.perf_counter()
            list(pool.map(lambda name: store.write(name, payload), names))
            put = time.perf_counter() - start
            start = time.perf_counter()
            list(pool.map(store.read, names))
            get = time.perf_counter() - start
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE bench (id serial PRIMARY KEY, v bytea)"))

        def commit(_: int) -> None:
            with engine.begin() as conn:
                conn.execute(sa.text("INSERT INTO bench (v) VALUES (:v)"), {"v": payload[:2000]})

        with ThreadPoolExecutor(THREADS_PER_WORKER) as pool:
            start = time.perf_counter()
            list(pool.map(commit, range(objects * 5)))
            commits = time.perf_counter() - start
        engine.dispose()
    megabytes = objects * size / 1e6
    print(
        f"stores alone ({THREADS_PER_WORKER} threads): SeaweedFS PUT {objects / put:.0f} objects/s "
        f"({megabytes / put:.0f} MB/s), GET {objects / get:.0f} objects/s "
        f"({megabytes / get:.0f} MB/s) of {size // 1000} kB; PostgreSQL "
        f"{objects * 5 / commits:.0f} commits/s (one 2 kB row each)"
    )


def main() -> int:
    """Run the cluster benchmark and print its table; non-zero when a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--stores-only", action="store_true", help="only measure the stores")
    args = parser.parse_args()
    for name in ("TEST_POSTGRES_URL", "TEST_S3_URL"):
        if not os.environ.get(name):
            print(f"{name} is unset: run storage/POSTGRES_SETUP.sh and storage/SEAWEEDFS_SETUP.sh")
            return 2
    measure_stores()
    if args.stores_only:
        return 0
    files = _files(load_settings().shared_data_dir)
    print(
        f"{args.sessions} sessions x {len(files)} scans, {THREADS_PER_WORKER} threads per worker, "
        f"{os.cpu_count()} CPU cores, PostgreSQL + SeaweedFS on this machine"
    )
    reports = [run(workers, args.sessions, files) for workers in args.workers]
    _print(reports)
    bad = any(
        r.errors or r.lost or r.duplicated or r.missing_objects or r.objects != r.rows
        for r in reports
    )
    return 1 if bad or not all(r.chain_ok for r in reports) else 0


if __name__ == "__main__":
    raise SystemExit(main())
