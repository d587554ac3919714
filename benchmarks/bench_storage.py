"""Storage speed: decrypting a large history, storing a full-size scan, and how the cost of
one record access changes with the number of patients.

The last part opens one patient's timeline (``list_scans``, 10 scans with a result each) and
saves one small scan for another patient, with 1,000, 10,000 and 100,000 patients in the
database: the other patients' record-version heads are inserted directly in bulk and the
tree over them signed (:func:`storage.versions.sign_heads`), since only rollback detection
reads state of other patients. Each figure is the median of 25 runs after a warm-up run, the
three databases measured in turn.

Run: ``.venv/bin/python benchmarks/bench_storage.py [--postgres URL]`` (temporary SQLite
databases, and fresh schemas of the PostgreSQL database at URL, or at ``TEST_POSTGRES_URL``,
when given: storage/POSTGRES_SETUP.sh prints one).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.findings import FINDINGS
from core.settings import load_settings
from models.inference import ModelInfo, Prediction
from storage import accounts, schema, versions
from storage.actor import Actor
from storage.bootstrap import open_database
from storage.db import Database
from storage.results import ResultIn
from storage.scans import add_results, list_scans, load_scan, save_scan
from tests.storage.conftest import empty_backend, env_for

N_RESULTS = 10_000
N_SCANS = 200
PASSWORD = "benchmark password"
#: Patients in the database for the scaling figures.
PATIENTS = (1_000, 10_000, 100_000)
#: Scans (each with one result) on the timeline opened by the scaling figures.
TIMELINE_SCANS = 10
_SMALL = np.random.default_rng(1).random((64, 64), dtype=np.float32)
_INFO = ModelInfo(
    name="densenet121",
    version="1.0.0",
    sha256="ab" * 32,
    thresholds=dict.fromkeys(FINDINGS, 0.5),
    device="cpu",
)


def _result(i: int) -> ResultIn:
    p = (i % 100) / 100
    prediction = Prediction(
        probabilities={
            "pneumonia": p,
            "bacterial_pneumonia": p / 2,
            "viral_pneumonia": p / 3,
            "covid19": p / 4,
        },
        abstained=False,
        abstain_reason=None,
        ood_score=0.1,
        thresholds=dict(_INFO.thresholds),
    )
    return ResultIn.from_prediction(prediction, _INFO)


def _best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _interleaved_ms(fns: list[Callable[[], object]], repeats: int = 25) -> list[float]:
    """Median milliseconds of each function, run in turn so that a change in the machine's
    load during the measurement weighs on all of them alike (after one warm-up run each)."""
    times: list[list[float]] = [[] for _ in fns]
    for round_ in range(repeats + 1):
        for fn, spent in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            if round_:
                spent.append(time.perf_counter() - start)
    return [statistics.median(spent) * 1000 for spent in times]


def _add_heads(db: Database, patients: int) -> None:
    """Make the owners of sealed records ``patients`` in all: the missing ones as heads
    inserted directly (owners without rows, filling the ids around the real ones), with the
    tree over every head signed."""
    with db.transaction() as session:
        heads = schema.table_of(schema.SealHead)
        taken = set(session.execute(sa.select(heads.c.user_id)).scalars())
        free = (owner for owner in itertools.count(1) if owner not in taken)
        empty = versions.EMPTY.digest
        rows = [
            {"user_id": owner, "counter": 1, "digest": empty}
            for owner in itertools.islice(free, patients - len(taken))
        ]
        session.execute(sa.insert(heads), rows)
        versions.sign_heads(session, db.keyring.subkey(session, versions.ROOT_PURPOSE))


def _save_small(db: Database, actor: Actor, day: int) -> int:
    return save_scan(
        db,
        actor,
        pixels=_SMALL,
        metadata={},
        enhancement={},
        scan_date=date(2020, 1, 1) + timedelta(days=day),
        filename=f"scan{day}.png",
        result=_result(day),
    )


@dataclass
class _Patients:
    """A database with a number of patients, one of whom has a timeline and one who saves."""

    db: Database
    reader: Actor
    saver: Actor
    days: Iterator[int] = field(default_factory=itertools.count)

    def open_timeline(self) -> None:
        list_scans(self.db, self.reader, self.reader.user_id)

    def save(self) -> None:
        _save_small(self.db, self.saver, next(self.days))


@contextmanager
def _with_patients(kind: str, patients: int) -> Iterator[_Patients]:
    with tempfile.TemporaryDirectory() as tmp, empty_backend(kind, Path(tmp)) as url:
        db = open_database(load_settings(env_for(url, Path(tmp) / "data")))
        try:
            reader = accounts.register(db, "reader", PASSWORD)
            saver = accounts.register(db, "saver", PASSWORD)
            for day in range(TIMELINE_SCANS):
                _save_small(db, reader, day)
            _add_heads(db, patients)
            yield _Patients(db, reader, saver, itertools.count(TIMELINE_SCANS))
        finally:
            db.close()


def scaling(kind: str) -> list[dict]:
    """Open one timeline and save one scan with 1,000, 10,000 and 100,000 patients.

    The three databases are open together and measured in turn (see :func:`_interleaved_ms`).

    Args:
        kind: ``sqlite``, or ``postgres`` (needs ``TEST_POSTGRES_URL``).

    Returns:
        Rows ``{"benchmark", "value", "unit"}``, two per number of patients.
    """
    with ExitStack() as stack:
        databases = [stack.enter_context(_with_patients(kind, n)) for n in PATIENTS]
        timelines = _interleaved_ms([d.open_timeline for d in databases])
        saves = _interleaved_ms([d.save for d in databases])
    rows = []
    for patients, timeline, save in zip(PATIENTS, timelines, saves, strict=True):
        for name, value in (
            (f"list_scans: one patient's {TIMELINE_SCANS}-scan timeline", timeline),
            ("save_scan: one 64x64 scan with its result", save),
        ):
            rows.append(
                {
                    "benchmark": f"{name}, {patients:,} patients ({kind})",
                    "value": round(value, 1),
                    "unit": "ms",
                }
            )
    return rows


def run() -> list[dict]:
    """Measure storage operations on temporary databases.

    Returns:
        Rows ``{"benchmark", "value", "unit"}``; the scaling figures on PostgreSQL too when
        ``TEST_POSTGRES_URL`` is set.
    """
    rows = _history_and_image() + scaling("sqlite")
    if os.environ.get("TEST_POSTGRES_URL"):
        rows += scaling("postgres")
    return rows


def _history_and_image() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "DATA_DIR": tmp,
            "ADMIN_PASSWORD": "benchmark admin",
            "MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            # One user stores the whole history at once, beyond a patient's hourly limit.
            "UPLOADS_PER_HOUR": str(N_SCANS + 10),
        }
        db = open_database(load_settings(env))
        try:
            actor = accounts.register(db, "bench", PASSWORD)
            small = np.zeros((8, 8), dtype=np.float32)
            scan_ids = [
                save_scan(
                    db,
                    actor,
                    pixels=small,
                    metadata={},
                    enhancement={},
                    scan_date=date(2020, 1, 1) + timedelta(days=i),
                    filename=f"scan{i}.png",
                )
                for i in range(N_SCANS)
            ]
            add_results(db, actor, [(scan_ids[i % N_SCANS], _result(i)) for i in range(N_RESULTS)])

            def load_history() -> None:
                scans = list_scans(db, actor, actor.user_id)
                assert sum(len(s.results) for s in scans) == N_RESULTS

            history = _best_of(3, load_history)
            image = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
            saved: list[int] = []
            store = _best_of(
                3,
                lambda: saved.append(
                    save_scan(
                        db,
                        actor,
                        pixels=image,
                        metadata={},
                        enhancement={},
                        scan_date=date(2024, 1, 1),
                        filename="big.png",
                        result=_result(1),
                    )
                ),
            )
            load = _best_of(3, lambda: load_scan(db, actor, saved[-1]))
        finally:
            db.close()
    return [
        {
            "benchmark": f"list_scans: decrypt and load {N_RESULTS} results",
            "value": round(history, 3),
            "unit": "s",
        },
        {
            "benchmark": "save_scan: encrypt and store one 1024x1024 scan",
            "value": round(store * 1000, 1),
            "unit": "ms",
        },
        {
            "benchmark": "load_scan: read and decrypt one 1024x1024 scan",
            "value": round(load * 1000, 1),
            "unit": "ms",
        },
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="also measure on this PostgreSQL")
    postgres = parser.parse_args().postgres
    if postgres:
        os.environ["TEST_POSTGRES_URL"] = postgres
    for row in run():
        print(f"{row['benchmark']}: {row['value']} {row['unit']}")
