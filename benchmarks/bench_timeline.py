"""Benchmark: build the timeline frame, red flags and figure for 500 scans.

Run: ``.venv/bin/python benchmarks/bench_timeline.py``. Prints one line per
figure; ``run()`` returns the same rows for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.findings import FINDINGS
from core.timeline import (
    red_flags,
    timeline_figure,
    timeline_frame,
    timeline_table,
    version_changes,
)
from core.views import View
from storage.results import ResultRecord
from storage.scans import ScanSummary

SCANS = 500
REPEATS = 5


def _scans(count: int) -> list[ScanSummary]:
    """``count`` scans three days apart, scored by model 1 then model 2, with random scores."""
    rng = random.Random(0)
    start = date(2020, 1, 1)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    scans = []
    for i in range(count):
        result = ResultRecord(
            probabilities={f: rng.random() for f in FINDINGS},
            model_name="bench",
            model_version="1" if i < count // 2 else "2",
            checkpoint_sha256="0" * 64,
            thresholds=dict.fromkeys(FINDINGS, 0.5),
            id=i,
            scan_id=i,
            created_at=created,
        )
        scans.append(
            ScanSummary(
                i,
                1,
                start + timedelta(days=3 * i),
                f"scan{i}.png",
                None,
                [result],
                created,
                # A realistic series: mostly PA, every fifth film AP (two lines per finding).
                View.AP if i % 5 == 4 else View.PA,
            )
        )
    return scans


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

    def whole() -> None:
        frame = timeline_frame(scans, "2")
        flags = red_flags(scans, current_version="2")
        timeline_figure(
            frame, flags=flags, changes=version_changes(scans, "2"), current_version="2"
        ).to_json()
        timeline_table(frame, flags)

    frame = timeline_frame(scans, "2")
    flags = red_flags(scans, current_version="2")
    figure = timeline_figure(
        frame, flags=flags, changes=version_changes(scans, "2"), current_version="2"
    )
    return [
        {
            "benchmark": f"timeline_frame_{SCANS}_scans",
            "value": _best_seconds(lambda: timeline_frame(scans, "2")) * 1000,
            "unit": "ms",
        },
        {
            "benchmark": f"red_flags_{SCANS}_scans",
            "value": _best_seconds(lambda: red_flags(scans, current_version="2")) * 1000,
            "unit": "ms",
        },
        {
            "benchmark": f"timeline_figure_{SCANS}_scans",
            "value": _best_seconds(lambda: timeline_figure(frame, flags=flags)) * 1000,
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
