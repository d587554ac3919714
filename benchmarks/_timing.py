"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def run_seconds(
    action: Callable[[], object], repeats: int, warm_up: Callable[[], object] | None = None
) -> list[float]:
    """Wall time of each of ``repeats`` runs of ``action``, after one untimed warm-up.

    Args:
        action: The work to time.
        repeats: Timed runs.
        warm_up: Cheaper stand-in for the warm-up call (default: ``action`` itself); the
            warm-up pays for lazy imports, allocator growth and kernel selection.

    Returns:
        Seconds per run, in run order.
    """
    (warm_up or action)()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return timings


def median_seconds(
    action: Callable[[], object], repeats: int, warm_up: Callable[[], object] | None = None
) -> float:
    """Median wall time of ``action`` over ``repeats`` runs, after one untimed warm-up.

    Args:
        action: The work to time.
        repeats: Timed runs.
        warm_up: As for :func:`run_seconds`.

    Returns:
        Seconds.
    """
    return statistics.median(run_seconds(action, repeats, warm_up))
