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

``--matrix`` measures throughput instead: 1, 2, 4 and 8 client threads in all (spread over
the replicas) against 1 and 2 replicas, each for ``--seconds``: scans/s (one 512x512 film per
``import_scans``, a fresh patient every 5 films) and timeline reads/s
(``services.records.read_patient`` of a patient with 10 scans), p50 and p95, the load average,
and the CPU seconds per request of the replicas (their own process time) and of the PostgreSQL
backends serving them (``/proc``, by ``application_name``), from which docs/SCALING.md
gives the expected curve on more cores. ``--explain`` fills a database with 100,000
patients' worth of rows and prints PostgreSQL's plan for each hot query.

Needs ``TEST_POSTGRES_URL`` and ``TEST_S3_URL`` (storage/POSTGRES_SETUP.sh and
storage/SEAWEEDFS_SETUP.sh print them) and ../shared/data.

Run: ``.venv/bin/python benchmarks/bench_cluster.py [--sessions 60] [--workers 1 2 3]``,
``... --matrix [--replicas 1 2] [--threads 1 2 4 8] [--seconds 10]``, ``... --explain``.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import multiprocessing
import os
import queue as queue_module
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
from urllib.parse import urlsplit

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.settings import load_settings
from core.timeline import sort_scans
from core.views import View
from services.imports import ScanFile, import_scans
from services.records import read_patient
from storage import accounts, audit, schema
from storage.actor import Actor
from storage.blobs import open_blob_store
from storage.bootstrap import open_database
from storage.db import make_engine
from storage.migrations import apply_migrations
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


# --- throughput matrix ------------------------------------------------------------------

#: Films each timeline-read patient holds, and patients read (client thread t reads t % 4).
READ_SCANS = 10
READERS = 4
#: The PostgreSQL connections of the replicas carry this name, so that their backends' CPU
#: time can be told from other work on the same server.
APP_NAME = "cxr-bench-cluster"


@dataclass
class CellResult:
    """What one replica measured during one cell of the matrix."""

    timings: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _scan_file(name: str, data: bytes) -> ScanFile:
    return ScanFile(name, lambda: data, view=View.PA)


def _import_loop(db, patients, files, deadline: float, out: CellResult) -> None:
    """One client thread: import one film at a time, a fresh patient every len(files) films."""
    while time.perf_counter() < deadline:
        try:
            actor = patients.get(timeout=5)  # get_nowait() also fails while another holds it
        except queue_module.Empty:
            out.errors.append("ran out of fresh patients: give more (--patients)")
            return
        for name, data in files:
            if time.perf_counter() >= deadline:
                return
            start = time.perf_counter()
            try:
                report = import_scans(
                    db, actor, [_scan_file(name, data)], None, scan_date=date(2026, 1, 1)
                )
                if not report.all_ok:
                    out.errors.append(f"{name}: {report.items[0].error}")
            except Exception as exc:  # every failure counts
                out.errors.append(f"import: {type(exc).__name__}: {exc}")
            out.timings.append(time.perf_counter() - start)


def _read_loop(db, reader: Actor, deadline: float, out: CellResult) -> None:
    """One client thread: open the reader's timeline again and again."""
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            record = read_patient(db, reader, reader.user_id, None)
            if len(record.scans) != READ_SCANS:
                out.errors.append(f"timeline has {len(record.scans)} scans")
        except Exception as exc:  # every failure counts
            out.errors.append(f"read: {type(exc).__name__}: {exc}")
        out.timings.append(time.perf_counter() - start)


def _replica(env, commands, results, patients, readers, files) -> None:
    """One replica process: open storage, then run the cells it is sent until told to stop."""
    db = open_database(load_settings(env), bootstrap_admin=False)
    try:
        read_patient(db, readers[0], readers[0].user_id, None)  # warm: imports, pool, keys
        results.put("ready")
        while (command := commands.get()) is not None:
            kind, threads, first_thread, start_at, seconds = command
            result = CellResult()
            time.sleep(max(0.0, start_at - time.time()))
            cpu, start = _cpu_s(), time.perf_counter()
            deadline = start + seconds
            with ThreadPoolExecutor(max(1, threads)) as pool:
                for t in range(threads):
                    if kind == "import":
                        pool.submit(_import_loop, db, patients, files, deadline, result)
                    else:
                        reader = readers[(first_thread + t) % len(readers)]
                        pool.submit(_read_loop, db, reader, deadline, result)
            result.wall_s = time.perf_counter() - start
            result.cpu_s = _cpu_s() - cpu
            results.put(result)
    finally:
        db.close()


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _s3_server_cpu(endpoint: str) -> dict[int, float]:
    """CPU seconds so far of the SeaweedFS process serving ``endpoint`` (same machine only)."""
    flag = f"-s3.port={urlsplit(endpoint).port}".encode()
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"weed") and flag in args:
            pid = int(cmdline.parent.name)
            found[pid] = _proc_cpu_s(pid)
    return found


def _backend_cpu(engine: sa.Engine) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the replicas (same machine only)."""
    with engine.connect() as conn:
        pids = conn.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
            {"name": APP_NAME},
        ).scalars()
        return {pid: _proc_cpu_s(pid) for pid in pids}


@dataclass
class Cell:
    """One cell of the matrix: a kind of request, replicas and client threads."""

    kind: str
    replicas: int
    threads: int
    requests: int
    wall_s: float
    timings: list[float]
    errors: list[str]
    app_cpu_s: float
    db_cpu_s: float
    s3_cpu_s: float
    load: tuple[float, float]

    @property
    def rate(self) -> float:
        """Requests completed per second of wall time."""
        return self.requests / self.wall_s if self.wall_s else 0.0


def _with_app_name(url: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}application_name={APP_NAME}"


def _films(shared: Path, count: int) -> list[tuple[str, bytes]]:
    """``count`` distinct NIH films (name, bytes), 512x512."""
    films = sorted((shared / "nih_adult" / "test").glob("*/*.jpeg"))[:count]
    if len(films) != count:
        sys.exit(f"need {count} NIH films under {shared}, found {len(films)}")
    return [(path.name, path.read_bytes()) for path in films]


def run_matrix(
    replica_counts: list[int],
    thread_counts: list[int],
    seconds: float,
    patients_per_replica: int,
    shared: Path,
) -> list[Cell]:
    """Every (replicas, threads) cell for imports and for timeline reads, on one fresh store."""
    files = _files(shared)
    read_films = _films(shared, READ_SCANS)
    cells: list[Cell] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        empty_backend("postgres", Path(tmp)) as url,
        s3_prefix() as s3,
    ):
        env = {
            **s3,
            "DATA_DIR": tmp,
            "DATABASE_URL": _with_app_name(url),
            "MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "ADMIN_PASSWORD": secrets.token_urlsafe(16),
            "ARGON2_PROFILE": "test",  # the accounts are set up, not measured
            "UPLOADS_PER_HOUR": "1000000",
            "REGISTRATIONS_PER_HOUR": "1000000",
            "REGISTRATIONS_PER_CLIENT_PER_HOUR": "1000000",
            "REGISTRATIONS_PER_NETWORK_PER_HOUR": "1000000",
        }
        db = open_database(load_settings(env))
        readers = []
        for r in range(READERS):
            reader = accounts.register(db, f"reader{r}", PASSWORD)
            for name, data in read_films:
                import_scans(db, reader, [_scan_file(name, data)], None, scan_date=date(2026, 1, 1))
            readers.append(reader)
        names = itertools.count()
        endpoint = s3["S3_ENDPOINT_URL"]
        monitor = sa.create_engine(url)
        context = multiprocessing.get_context("spawn")  # fresh processes, like replicas
        for replicas in replica_counts:
            patients = context.Queue()
            for _ in range(patients_per_replica * replicas):
                patients.put(accounts.register(db, f"uploader{next(names):05d}", PASSWORD))
            commands = [context.Queue() for _ in range(replicas)]
            results = context.Queue()
            processes = [
                context.Process(
                    target=_replica, args=(env, commands[w], results, patients, readers, files)
                )
                for w in range(replicas)
            ]
            for process in processes:
                process.start()
            for _ in processes:
                if results.get(timeout=300) != "ready":
                    sys.exit("a replica failed to start")
            try:
                for kind, threads in itertools.product(("import", "read"), thread_counts):
                    cell = _cell(
                        kind, replicas, threads, seconds, commands, results, monitor, endpoint
                    )
                    cells.append(cell)
                    print(_cell_line(cell), flush=True)
            finally:
                for command_queue in commands:
                    command_queue.put(None)
                for process in processes:
                    process.join()
        monitor.dispose()
        _check_matrix(db, cells)
        db.close()
    return cells


def _cell(kind, replicas, threads, seconds, commands, results, monitor, endpoint) -> Cell:
    shares = [threads // replicas + (w < threads % replicas) for w in range(replicas)]
    firsts = [sum(shares[:w]) for w in range(replicas)]
    before_db, before_s3 = _backend_cpu(monitor), _s3_server_cpu(endpoint)
    start_at = time.time() + 0.5
    for w, command_queue in enumerate(commands):
        command_queue.put((kind, shares[w], firsts[w], start_at, seconds))
    load_before = os.getloadavg()[0]
    parts: list[CellResult] = [results.get() for _ in commands]
    after_db = _backend_cpu(monitor)
    db_cpu = sum(cpu - before_db.get(pid, 0.0) for pid, cpu in after_db.items())
    after_s3 = _s3_server_cpu(endpoint)
    s3_cpu = sum(cpu - before_s3.get(pid, 0.0) for pid, cpu in after_s3.items())
    timings = [t for part in parts for t in part.timings]
    return Cell(
        kind=kind,
        replicas=replicas,
        threads=threads,
        requests=len(timings),
        wall_s=max(part.wall_s for part in parts),
        timings=timings,
        errors=[e for part in parts for e in part.errors],
        app_cpu_s=sum(part.cpu_s for part in parts),
        db_cpu_s=db_cpu,
        s3_cpu_s=s3_cpu,
        load=(load_before, os.getloadavg()[0]),
    )


MATRIX_HEADER = (
    f"{'request':>8} {'replicas':>8} {'threads':>7} {'done':>5} {'errors':>6} {'per s':>6} "
    f"{'p50 ms':>7} {'p95 ms':>7} {'CPU s/req: app':>14} {'db':>5} {'s3':>5} "
    f"{'load 1m':>11}"
)


def _cell_line(c: Cell) -> str:
    per = max(c.requests, 1)
    return (
        f"{'scan' if c.kind == 'import' else 'timeline':>8} {c.replicas:>8} {c.threads:>7} "
        f"{c.requests:>5} {len(c.errors):>6} {c.rate:>6.2f} {_pct(c.timings, 50) * 1000:>7.0f} "
        f"{_pct(c.timings, 95) * 1000:>7.0f} {c.app_cpu_s / per:>14.3f} "
        f"{c.db_cpu_s / per:>5.3f} {c.s3_cpu_s / per:>5.3f} {c.load[0]:>5.1f}-{c.load[1]:<5.1f}"
    )


def _check_matrix(db, cells: list[Cell]) -> None:
    """Rows against objects and the audit chain, after every cell."""
    with db.transaction() as session:
        scans = schema.table_of(schema.Scan)
        names = set(session.execute(sa.select(scans.c.blob_name)).scalars())
    objects = {info.name for info in db.blobs.list_objects()}
    errors = sum(len(c.errors) for c in cells)
    for error in sorted({e for c in cells for e in c.errors})[:5]:
        print(f"error: {error}")
    print(
        f"check: {len(names)} scan rows, {len(objects)} objects, {len(names - objects)} rows "
        f"without their object, {errors} errors, audit chain "
        f"{'ok' if audit.verify_chain(db).ok else 'BROKEN'}"
    )


def _print_scaling(cells: list[Cell]) -> None:
    """Best rate per (request, replicas) and the ratio of 2 replicas to 1."""
    for kind in ("import", "read"):
        best = {
            r: max((c.rate for c in cells if c.kind == kind and c.replicas == r), default=0.0)
            for r in sorted({c.replicas for c in cells})
        }
        if 1 in best and best[1]:
            ratios = ", ".join(f"{r} replicas {v / best[1]:.2f}x" for r, v in best.items())
            label = "scans" if kind == "import" else "timeline reads"
            print(f"best {label}/s: " + ", ".join(f"{v:.2f}" for v in best.values()), end="")
            print(f" ({ratios})")


# --- EXPLAIN of the hot queries ----------------------------------------------------------

#: The statements behind every page view and upload (the ORM's, written out), one literal
#: id each: (what, SQL).
HOT_QUERIES: tuple[tuple[str, str], ...] = (
    ("scans of a patient (timeline)", "SELECT * FROM scans WHERE owner_id = 4242"),
    ("results of a scan", "SELECT * FROM results WHERE scan_id = 424242"),
    (
        "results of a patient's scans",
        "SELECT * FROM results WHERE owner_id = 4242 AND scan_id IN (1, 2, 3) ORDER BY id",
    ),
    ("notes of a scan", "SELECT * FROM notes WHERE scan_id = 424242 ORDER BY id"),
    (
        "access log of a patient",
        "SELECT * FROM audit_events WHERE patient_id = 4242 ORDER BY seq",
    ),
    (
        "emergency reads not yet seen",
        "SELECT * FROM audit_events WHERE patient_id = 4242 AND emergency AND seq > 10 "
        "ORDER BY seq",
    ),
    (
        "account control by an approver (emergency approval)",
        "SELECT record_id, ts FROM audit_events WHERE actor_id = 4242 AND action IN "
        "('register', 'admin_reset_password') AND record_type = 'users' AND record_id IN (1, 2)",
    ),
    (
        "who created or reset two accounts (emergency approval)",
        "SELECT record_id, actor_id, ts FROM audit_events WHERE action IN "
        "('register', 'admin_reset_password') AND record_type = 'users' "
        "AND record_id IN (4242, 4243)",
    ),
    (
        "registration alerts of the last day (admin)",
        "SELECT ts FROM audit_events WHERE action = 'registration_alert' "
        "AND ts >= '2026-01-01' ORDER BY seq DESC",
    ),
    ("last audit event (append)", "SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1"),
    (
        "grants of a clinician for a patient (every access)",
        "SELECT * FROM share_grants WHERE clinician_id = 77 AND patient_id = 4242 "
        "AND revoked_at IS NULL AND expires_at > now() ORDER BY id",
    ),
    ("grants of a patient", "SELECT * FROM share_grants WHERE patient_id = 4242 ORDER BY id DESC"),
    (
        "emergency access of a clinician for a patient",
        "SELECT * FROM emergency_accesses WHERE clinician_id = 77 AND patient_id = 4242 "
        "AND approved_at IS NOT NULL AND expires_at > now() ORDER BY expires_at DESC",
    ),
    ("session by token (every page run)", "SELECT * FROM user_sessions WHERE token_hash = 'x'"),
    (
        "open sessions of a user",
        "SELECT * FROM user_sessions WHERE user_id = 4242 AND ended_at IS NULL",
    ),
    (
        "seal heads of an owner's block",
        "SELECT * FROM seal_heads WHERE user_id BETWEEN 4240 AND 4255",
    ),
    ("row versions of an owner", "SELECT * FROM seal_versions WHERE owner_id = 4242"),
    ("data keys of a user", "SELECT * FROM user_keys WHERE user_id = 4242"),
    (
        "same file already stored",
        "SELECT scan_id FROM scan_contents WHERE owner_id = 4242 AND mac = 'x'",
    ),
    ("user by name (login)", "SELECT * FROM users WHERE username = 'patient004242'"),
    (
        "uploads of a patient in the last hour",
        "SELECT count(*) FROM rate_events WHERE kind = 'upload' AND subject = '4242' "
        "AND created_at > now() - interval '1 hour'",
    ),
)

#: Rows of a hospital with 100,000 patients (each with 10 scans and 100 audit events).
_FILL = (
    "INSERT INTO users (id, username, role, is_active, must_change_password, created_at) "
    "SELECT i, 'patient' || lpad(i::text, 6, '0'), 'patient', true, false, now() "
    "FROM generate_series(1, 100000) i",
    "INSERT INTO users (id, username, role, is_active, must_change_password, created_at) "
    "SELECT i, 'clinician' || i, 'clinician', true, false, now() "
    "FROM generate_series(100001, 100500) i",
    "INSERT INTO user_keys (user_id, version, wrapped_key, created_at) "
    "SELECT i, 1, '\\x00', now() FROM generate_series(1, 100000) i",
    "INSERT INTO scans (id, owner_id, key_version, blob_name, created_at) "
    "SELECT i, 1 + i % 100000, 1, md5(i::text), now() FROM generate_series(1, 1000000) i",
    "INSERT INTO results (scan_id, owner_id, key_version, created_at) "
    "SELECT i, 1 + i % 100000, 1, now() FROM generate_series(1, 1000000) i",
    "INSERT INTO notes (scan_id, owner_id, author_id, key_version, created_at) "
    "SELECT i * 10, 1 + i * 10 % 100000, 77, 1, now() FROM generate_series(1, 100000) i",
    "INSERT INTO seal_versions (table_name, row_id, owner_id, row_version) "
    "SELECT 'scans', i, 1 + i % 100000, 1 FROM generate_series(1, 1000000) i",
    "INSERT INTO seal_heads (user_id, counter, digest) "
    "SELECT i, 10, md5(i::text) FROM generate_series(1, 100000) i",
    "INSERT INTO audit_events (seq, ts, actor_id, action, patient_id, record_type, record_id, "
    "emergency, details, prev_hash, hash) SELECT i, '2026-01-01', 1 + i % 100000, "
    "(ARRAY['list_scans', 'view_scan', 'save_scan', 'register', 'login'])[1 + i % 5], "
    "1 + i % 100000, CASE WHEN i % 5 = 3 THEN 'users' ELSE 'scans' END, i % 100000, "
    "i % 1000 = 0, '{}', md5(i::text), md5((i + 1)::text) FROM generate_series(1, 10000000) i",
    "INSERT INTO share_grants (patient_id, clinician_id, all_scans, created_at, expires_at) "
    "SELECT 1 + i % 100000, 100001 + i % 500, true, now(), now() + interval '1 day' "
    "FROM generate_series(1, 200000) i",
    "INSERT INTO emergency_accesses (clinician_id, patient_id, key_version, created_at, "
    "expires_at, minutes) SELECT 100001 + i % 500, 1 + i % 100000, 1, now(), now(), 60 "
    "FROM generate_series(1, 10000) i",
    "INSERT INTO user_sessions (token_hash, user_id, role, created_at, last_seen_at) "
    "SELECT md5(i::text) || md5((-i)::text), 1 + i % 100000, 'patient', now(), now() "
    "FROM generate_series(1, 500000) i",
    "INSERT INTO scan_contents (scan_id, owner_id, mac) "
    "SELECT i, 1 + i % 100000, md5(i::text) FROM generate_series(1, 1000000) i",
    "INSERT INTO rate_events (kind, subject, created_at) "
    "SELECT 'upload', (1 + i % 100000)::text, now() FROM generate_series(1, 100000) i",
)


def explain(audit_events: int) -> None:
    """Fill a fresh, migrated schema with 100,000 patients' rows and print each hot plan,
    then the plans that change without migration step 19's indexes."""
    with tempfile.TemporaryDirectory() as tmp, empty_backend("postgres", Path(tmp)) as url:
        engine = make_engine(url, statement_timeout_ms=3_600_000)
        apply_migrations(engine)
        start = time.perf_counter()
        with engine.begin() as conn:
            for statement in _FILL:
                conn.execute(sa.text(statement.replace("10000000", str(audit_events))))
        print(f"filled in {time.perf_counter() - start:.0f} s ({audit_events:,} audit events)")
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
            with_step_19 = {what: _plan(conn, sql) for what, sql in HOT_QUERIES}
            for what, plan in with_step_19.items():
                print(f"{what:<56} {plan}")
            for name in schema.STEP_19_INDEXES:
                conn.execute(sa.text(f"DROP INDEX {name}"))
            print("without step 19's indexes:")
            for what, sql in HOT_QUERIES:
                if (plan := _plan(conn, sql)) != with_step_19[what]:
                    print(f"{what:<56} {plan}")
        engine.dispose()


def _plan(conn: sa.Connection, sql: str) -> str:
    """The scan nodes of a statement's plan, and its estimated total cost."""
    plan = conn.execute(sa.text(f"EXPLAIN {sql}")).scalars().all()
    nodes = [
        line.strip().removeprefix("->  ").split("  (")[0]
        for line in plan
        if "Scan" in line and "Cond" not in line
    ]
    cost = plan[0].split("..")[1].split(" ")[0]
    return f"{'; '.join(nodes) or plan[0]} (cost {cost})"


def main() -> int:
    """Run the cluster benchmark and print its table; non-zero when a check failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--stores-only", action="store_true", help="only measure the stores")
    parser.add_argument("--matrix", action="store_true", help="throughput and latency matrix")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each cell")
    parser.add_argument(
        "--patients", type=int, default=40, help="fresh uploading patients per replica"
    )
    parser.add_argument("--explain", action="store_true", help="plans of the hot queries")
    parser.add_argument("--audit-events", type=int, default=2_000_000, help="for --explain")
    args = parser.parse_args()
    for name in ("TEST_POSTGRES_URL", "TEST_S3_URL"):
        if not os.environ.get(name):
            print(f"{name} is unset: run storage/POSTGRES_SETUP.sh and storage/SEAWEEDFS_SETUP.sh")
            return 2
    if args.explain:
        explain(args.audit_events)
        return 0
    measure_stores()
    if args.stores_only:
        return 0
    if args.matrix:
        print(
            f"{os.cpu_count()} CPU cores, PostgreSQL + SeaweedFS on this machine; threads are "
            f"client threads in all, spread over the replicas; {args.seconds:.0f} s per cell"
        )
        print(MATRIX_HEADER)
        cells = run_matrix(
            args.replicas,
            args.threads,
            args.seconds,
            args.patients,
            load_settings().shared_data_dir,
        )
        _print_scaling(cells)
        return 1 if any(c.errors for c in cells) else 0
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
