"""Benchmark: build the timeline frame, red flags and figure for 500 scans.

Run: ``.venv/bin/python benchmarks/bench_timeline.py``. Prints one line per
figure; ``run()`` returns the same rows for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.findings import FINDINGS  # noqa: E402
from core.timeline import red_flags, timeline_figure, timeline_frame, timeline_table, version_changes  # noqa: E402

SCANS = 500
REPEATS = 5


@dataclass
class _Result:
    id: int
    probabilities: dict[str, float]
    model_version: str
    model_name: str = "bench"
    abstained: bool = False
    abstain_reason: str | None = None
    thresholds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FINDINGS, 0.5))
    created_at: datetime = datetime(2026, 1, 1)


@dataclass
class _Scan:
    id: int
    scan_date: date
    filename: str
    results: list[_Result]


def _scans(count: int) -> list[_Scan]:
    rng = random.Random(0)
    start = date(2020, 1, 1)
    scans = []
    for i in range(count):
        version = "1" if i < count // 2 else "2"
        probabilities = {f: rng.random() for f in FINDINGS}
        scans.append(_Scan(i, start + timedelta(days=3 * i), f"scan{i}.png", [_Result(i, probabilities, version)]))
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
        timeline_figure(frame, flags=flags, changes=version_changes(scans, "2"), current_version="2").to_json()
        timeline_table(frame, flags)

    frame = timeline_frame(scans, "2")
    flags = red_flags(scans, current_version="2")
    figure = timeline_figure(frame, flags=flags, changes=version_changes(scans, "2"), current_version="2")
    return [
        {"benchmark": f"timeline_frame_{SCANS}_scans", "value": _best_seconds(lambda: timeline_frame(scans, "2")) * 1000, "unit": "ms"},
        {"benchmark": f"red_flags_{SCANS}_scans", "value": _best_seconds(lambda: red_flags(scans, current_version="2")) * 1000, "unit": "ms"},
        {"benchmark": f"timeline_figure_{SCANS}_scans", "value": _best_seconds(lambda: timeline_figure(frame, flags=flags)) * 1000, "unit": "ms"},
        {"benchmark": f"timeline_end_to_end_json_{SCANS}_scans", "value": _best_seconds(whole) * 1000, "unit": "ms"},
        {"benchmark": f"timeline_figure_json_size_{SCANS}_scans", "value": len(figure.to_json()) / 1024, "unit": "KiB"},
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row['benchmark']}: {row['value']:.1f} {row['unit']}")
