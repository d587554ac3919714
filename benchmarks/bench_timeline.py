"""Benchmark: read 500 scans and build the timeline frame, figure and table from the readings.

Run: ``.venv/bin/python benchmarks/bench_timeline.py``. Prints one line per
figure; ``run()`` returns the same rows for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.findings import FINDINGS
from core.scan_reading import ScanReading, read_scans
from core.timeline import timeline_figure, timeline_frame, timeline_table
from core.views import View
from models.reports import METRICS_PATH
from services.records import record_of, timeline_of
from services.validity import patient_population, validity_of
from storage.results import ResultRecord
from storage.scans import ScanSummary

SCANS = 500
REPEATS = 5

#: The shipped checkpoint, whose validity table holds for adults (an unevaluated one holds for
#: no one, and nothing would be plotted).
_SHIPPED_SHA: str = json.loads(METRICS_PATH.read_text())["model"]["sha256"]


def _result(rng: random.Random, scan_id: int, version: str, created: datetime) -> ResultRecord:
    return ResultRecord(
        probabilities={f: rng.random() for f in FINDINGS},
        model_name="bench",
        model_version=version,
        checkpoint_sha256=_SHIPPED_SHA,
        thresholds=dict.fromkeys(FINDINGS, 0.5),
        id=2 * scan_id + (version == "2"),
        scan_id=scan_id,
        created_at=created,
    )


def _scans(count: int) -> list[ScanSummary]:
    """``count`` scans three days apart with random scores: the first half scored by model 1
    and re-scored by model 2, the rest by model 2 only (so every scan has the current model)."""
    rng = random.Random(0)
    start = date(2020, 1, 1)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    scans = []
    for i in range(count):
        versions = ("1", "2") if i < count // 2 else ("2",)
        scans.append(
            ScanSummary(
                i,
                1,
                start + timedelta(days=3 * i),
                f"scan{i}.png",
                None,
                [_result(rng, i, version, created) for version in versions],
                created,
                # A realistic series: mostly PA, every fifth film AP (two lines per finding).
                View.AP if i % 5 == 4 else View.PA,
            )
        )
    return scans


def _read(scans: list[ScanSummary]) -> list[ScanReading]:
    """Read the scans as ``services.records`` does, for a patient born in 1960."""
    return read_scans(
        scans,
        current_version="2",
        validity_of=validity_of,
        population_of=lambda stored, on: patient_population(stored, 1960, on),
    )


class _Model:
    """What ``services.records.record_of`` reads of a classifier: its version."""

    class info:
        version = "2"


def _best_seconds(action) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        began = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - began)
    return best


def run() -> list[dict]:
    """Time the timeline pipeline for :data:`SCANS` scans.

    Returns:
        Rows ``{"benchmark", "value", "unit"}``: best of :data:`REPEATS` runs.
    """
    scans = _scans(SCANS)
    readings = _read(scans)
    frame = timeline_frame(readings)
    assert not frame.empty, "nothing plotted: check the validity table"
    figure = timeline_figure(frame, readings)

    def whole() -> None:
        record = record_of(scans, 1960, _Model(), patient_id=1)  # type: ignore[arg-type]
        timeline = timeline_of(record)
        assert timeline.figure is not None
        timeline.figure.to_json()

    return [
        {
            "benchmark": f"read_scans_{SCANS}_scans",
            "value": _best_seconds(lambda: _read(scans)) * 1000,
            "unit": "ms",
        },
        {
            "benchmark": f"timeline_frame_{SCANS}_scans",
            "value": _best_seconds(lambda: timeline_frame(readings)) * 1000,
            "unit": "ms",
        },
        {
            "benchmark": f"timeline_figure_{SCANS}_scans",
            "value": _best_seconds(lambda: timeline_figure(frame, readings)) * 1000,
            "unit": "ms",
        },
        {
            "benchmark": f"timeline_table_{SCANS}_scans",
            "value": _best_seconds(lambda: timeline_table(readings)) * 1000,
            "unit": "ms",
        },
        {
            "benchmark": f"timeline_end_to_end_json_{SCANS}_scans",
            "value": _best_seconds(whole) * 1000,
            "unit": "ms",
        },
        {
            "benchmark": f"timeline_figure_json_size_{SCANS}_scans",
            "value": len(figure.to_json()) / 1024,
            "unit": "KiB",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['benchmark']}: {row['value']:.1f} {row['unit']}")
