"""The audit chain's append cost under concurrent writers, and a page rerun that writes nothing.

Every audited action appends to one hash chain: the append locks the single head row
(``SELECT ... FOR UPDATE`` on PostgreSQL), checks it, writes the event and moves the head, and
after the commit anchors the head in the blob store. So concurrent writers queue on that row.
This script measures appends per second and the latency of one append (its own transaction,
commit and anchor included: p50 and p95) for 1 and 8 writer threads, and for 8 writer
processes (each its own connection pool and Python interpreter), then checks that the chain
still verifies (``verify_chain``). It also times one read of a patient's scan list audited
(no viewing: one append) against a rerun of a viewing already audited (no write).

Run: ``.venv/bin/python benchmarks/bench_audit.py [--postgres URL] [--appends N]`` (a fresh
schema of the PostgreSQL database at URL, or at ``TEST_POSTGRES_URL``; storage/POSTGRES_SETUP.sh
prints one; without either, a temporary SQLite database).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.settings import load_settings
from storage import accounts, audit
from storage.actor import Actor
from storage.bootstrap import open_database
from storage.db import Database
from storage.scans import list_scans
from tests.storage.conftest import empty_backend, env_for

PASSWORD = "benchmark password"
#: Reads timed for the viewing comparison.
READS = 200


def _append_n(db: Database, actor: Actor, count: int, latencies: list[float]) -> None:
    """``count`` appends, each in its own transaction, their latencies added to ``latencies``."""
    for number in range(count):
        start = time.perf_counter()
        with db.transaction() as session:
            audit.append(
                session,
                db,
                "bench_append",
                actor=actor,
                patient_id=actor.user_id,
                details={"n": number},
            )
        latencies.append(time.perf_counter() - start)


def _in_threads(db: Database, actors: list[Actor], per_writer: int) -> tuple[float, list[float]]:
    """Wall seconds and every append's latency, one thread per actor."""
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(actors) + 1)
    errors: list[BaseException] = []

    def writer(actor: Actor) -> None:
        mine: list[float] = []
        barrier.wait()
        try:
            _append_n(db, actor, per_writer, mine)
        except BaseException as err:  # reported after the join
            errors.append(err)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=writer, args=(actor,)) for actor in actors]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return wall, latencies


def _process_writer(
    env: dict[str, str], actor: Actor, per_writer: int, barrier: object, out: object
) -> None:
    db = open_database(load_settings(env))
    try:
        latencies: list[float] = []
        barrier.wait()  # type: ignore[attr-defined]
        _append_n(db, actor, per_writer, latencies)
        out.put(latencies)  # type: ignore[attr-defined]
    finally:
        db.close()


def _in_processes(
    env: dict[str, str], actors: list[Actor], per_writer: int
) -> tuple[float, list[float]]:
    """Wall seconds (from the moment every process is ready) and every append's latency."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(actors) + 1)
    out = context.Queue()
    processes = [
        context.Process(target=_process_writer, args=(env, actor, per_writer, barrier, out))
        for actor in actors
    ]
    for process in processes:
        process.start()
    barrier.wait()
    start = time.perf_counter()
    latencies = [value for _ in processes for value in out.get()]
    wall = time.perf_counter() - start
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a writer process failed (exit code {process.exitcode})")
    return wall, latencies


def _row(label: str, appends: int, wall: float, latencies: list[float]) -> str:
    cuts = statistics.quantiles(latencies, n=20)
    return (
        f"{label:<20} {appends:>7} {appends / wall:>10.0f} "
        f"{statistics.median(latencies) * 1000:>9.1f} {cuts[18] * 1000:>9.1f}"
    )


def _median_ms(action: Callable[[], object]) -> float:
    action()
    times = []
    for _ in range(READS):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL to measure on")
    parser.add_argument("--appends", type=int, default=800, help="appends per configuration")
    args = parser.parse_args()
    if args.postgres:
        os.environ["TEST_POSTGRES_URL"] = args.postgres
    kind = "postgres" if os.environ.get("TEST_POSTGRES_URL") else "sqlite"
    with tempfile.TemporaryDirectory() as tmp, empty_backend(kind, Path(tmp)) as url:
        env = env_for(url, Path(tmp) / "data")
        db = open_database(load_settings(env))
        try:
            actors = [accounts.register(db, f"writer{i}", PASSWORD) for i in range(8)]
            print(f"Audit chain appends on {kind} ({args.appends} per configuration)")
            print(f"{'writers':<20} {'appends':>7} {'appends/s':>10} {'p50 ms':>9} {'p95 ms':>9}")
            for label, writers in (("1 thread", 1), ("8 threads", 8)):
                per_writer = args.appends // writers
                wall, latencies = _in_threads(db, actors[:writers], per_writer)
                print(_row(label, per_writer * writers, wall, latencies))
            per_writer = args.appends // 8
            wall, latencies = _in_processes(env, actors, per_writer)
            print(_row("8 processes", per_writer * 8, wall, latencies))

            reader = actors[0]
            audited = _median_ms(lambda: list_scans(db, reader, reader.user_id))
            rerun = _median_ms(lambda: list_scans(db, reader, reader.user_id, viewing="bench"))
            print(
                f"list_scans (empty record), median of {READS}: audited every call "
                f"{audited:.2f} ms, rerun of a viewing already audited {rerun:.2f} ms"
            )
            report = audit.verify_chain(db)
            print(
                f"verify_chain: {'ok' if report.ok else 'BROKEN: ' + str(report.reason)} "
                f"({report.checked} events checked)"
            )
        finally:
            db.close()


if __name__ == "__main__":
    main()
