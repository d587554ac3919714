"""Concurrent patient sessions on one database handle: no errors, no lost or duplicated rows.

A small version of ``benchmarks/bench_load.py`` (which measures speed); nothing here is timed.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta

import numpy as np
import sqlalchemy as sa

from core.findings import FINDINGS
from storage import accounts, audit
from storage.actor import Actor
from storage.results import ResultIn
from storage.scans import list_scans, save_scan
from tests.storage.conftest import PASSWORD

SESSIONS = 8
SCANS = 3


def _probability(session: int, scan: int) -> float:
    return round(0.1 * session + 0.01 * scan, 4)


def _store_and_list(
    database, actor: Actor, index: int, barrier: threading.Barrier, errors: list[BaseException]
) -> None:
    rng = np.random.default_rng(index)
    try:
        barrier.wait()
        for scan in range(SCANS):
            save_scan(
                database,
                actor,
                pixels=rng.random((128, 128), dtype=np.float32),
                metadata={},
                enhancement={},
                scan_date=date(2025, 3, 1) + timedelta(days=scan),
                filename=f"scan-{scan}.png",
                result=ResultIn(
                    probabilities={
                        **dict.fromkeys(FINDINGS, 0.05),
                        "pneumonia": _probability(index, scan),
                    },
                    model_name="load",
                    model_version="1",
                    checkpoint_sha256="ab" * 32,
                ),
            )
            list_scans(database, actor, actor.user_id)
    except BaseException as exc:  # surfaced by the test
        errors.append(exc)
        barrier.abort()


def test_concurrent_sessions_store_every_scan_exactly_once(database, make_user) -> None:
    patients = [make_user(f"patient{i}") for i in range(SESSIONS)]
    # Each session logs in for itself, as a browser session would.
    actors = [
        accounts.authenticate(database, p.username, PASSWORD, f"10.0.0.{i}")
        for i, p in enumerate(patients)
    ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(SESSIONS)
    threads = [
        threading.Thread(target=_store_and_list, args=(database, a, i, barrier, errors))
        for i, a in enumerate(actors)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for index, actor in enumerate(actors):
        scans = list_scans(database, actor, actor.user_id)
        assert sorted(s.filename for s in scans) == [f"scan-{n}.png" for n in range(SCANS)]
        for scan in scans:
            number = int(scan.filename[5])
            assert [r.probabilities["pneumonia"] for r in scan.results] == [
                _probability(index, number)
            ]
    with database.engine.connect() as conn:
        per_owner = conn.execute(
            sa.text("SELECT owner_id, COUNT(*) FROM scans GROUP BY owner_id")
        ).all()
        results = conn.execute(sa.text("SELECT COUNT(*) FROM results")).scalar_one()
    assert sorted(per_owner) == sorted((a.user_id, SCANS) for a in actors)
    assert results == SESSIONS * SCANS
    assert sum(1 for _ in database.blobs.list_objects()) == SESSIONS * SCANS
    report = audit.verify_chain(database)
    assert report.ok, report.reason
