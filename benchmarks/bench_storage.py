"""Storage speed: decrypting a large history and storing a full-size scan.

Run: ``.venv/bin/python benchmarks/bench_storage.py`` (uses a temporary SQLite database).
"""

from __future__ import annotations

import base64
import secrets
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.findings import FINDINGS
from core.settings import load_settings
from models.inference import ModelInfo, Prediction
from storage import accounts
from storage.bootstrap import open_database
from storage.results import ResultIn
from storage.scans import add_results, list_scans, load_scan, save_scan

N_RESULTS = 10_000
N_SCANS = 200
PASSWORD = "benchmark password"
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


def run() -> list[dict]:
    """Measure storage operations on a temporary database.

    Returns:
        Rows ``{"benchmark", "value", "unit"}``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "DATA_DIR": tmp,
            "ADMIN_PASSWORD": "benchmark admin",
            "MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
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
    for row in run():
        print(f"{row['benchmark']}: {row['value']} {row['unit']}")
