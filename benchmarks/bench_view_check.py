"""Benchmark: accuracy of the automatic view check (``core.view_check``) on the shared data.

The shared data (``../shared/data``) holds frontal films only: NIH adult films labelled PA or AP
(``nih_adult/labels.csv``, column ``view``), the Kermany children's films and the COVID-19
radiography films (all frontal). There is NO real lateral film in it, so what can be measured
on real films is:

* the false-warning rate: frontal films, uploaded as frontal, that the check says do not look
  frontal (by source, and for NIH by PA and AP);
* how often a frontal film wrongly marked as a side view would be questioned ("looks frontal").

The rate at which a real lateral marked as frontal is caught is NOT measurable here. As a
stand-in only, the script also reports the check on SYNTHETIC "laterals" (one half of each
frontal film stretched to full width: a lung field in the middle and the spine at one edge);
these are not radiographs and their figure says little about real laterals.

Run: ``.venv/bin/python benchmarks/bench_view_check.py [--split test|val] [--limit N]``
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    # Run as a script: make the project importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.imaging import decode_scan
from core.settings import load_settings
from core.view_check import FRONTAL_CLEAR, FRONTAL_FLOOR, central_band_contrast


def _films(root: Path, split: str) -> Iterator[tuple[str, Path]]:
    """``(group, path)`` of every frontal film of one split: by source, NIH also by view."""
    with (root / "manifest.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] == split:
                yield row["dataset"], root / row["path"]
    with (root / "nih_adult" / "labels.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["split"] == split:
                yield f"nih_adult {row['view']}", root / row["path"]


def _synthetic_lateral(pixels: np.ndarray) -> np.ndarray:
    """SYNTHETIC: the left half of a frontal film stretched to full width (not a radiograph)."""
    half = pixels[:, : pixels.shape[1] // 2]
    return np.repeat(half, 2, axis=1)[:, : pixels.shape[1]]


def _wilson(hits: int, total: int) -> tuple[float, float]:
    """95% Wilson interval of a proportion."""
    if total == 0:
        return (math.nan, math.nan)
    z = 1.96
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def measure(split: str = "test", limit: int | None = None) -> dict[str, dict[str, float]]:
    """The check's figures per group of films.

    Args:
        split: Which split of the shared data to measure (``test`` or ``val``).
        limit: At most this many films per group (all when ``None``).

    Returns:
        ``{group: {"n", "false_warning", "fw_low", "fw_high", "looks_frontal",
        "median_contrast", "synthetic_caught"}}``; groups are the sources, NIH PA and AP, and
        ``all frontal``.
    """
    root = load_settings().shared_data_dir
    contrasts: dict[str, list[float]] = {}
    synthetic: dict[str, list[float]] = {}
    for group, path in _films(root, split):
        if limit is not None and len(contrasts.get(group, [])) >= limit:
            continue
        pixels = decode_scan(path.read_bytes(), path.name).pixels
        contrasts.setdefault(group, []).append(central_band_contrast(pixels))
        synthetic.setdefault(group, []).append(central_band_contrast(_synthetic_lateral(pixels)))
    contrasts["all frontal"] = [v for values in contrasts.values() for v in values]
    synthetic["all frontal"] = [v for values in synthetic.values() for v in values]
    out = {}
    for group, values in contrasts.items():
        array = np.asarray(values)
        warned = int((array < FRONTAL_FLOOR).sum())
        low, high = _wilson(warned, len(array))
        out[group] = {
            "n": float(len(array)),
            "false_warning": warned / len(array),
            "fw_low": low,
            "fw_high": high,
            "looks_frontal": float((array >= FRONTAL_CLEAR).mean()),
            "median_contrast": float(np.median(array)),
            "synthetic_caught": float((np.asarray(synthetic[group]) < FRONTAL_FLOOR).mean()),
        }
    return out


def run() -> list[dict]:
    """Rows for ``benchmarks/run_all.py``: the false-warning rate on all frontal test films."""
    figures = measure("test")["all frontal"]
    return [
        {
            "benchmark": "view_check_false_warning_frontal_test",
            "value": figures["false_warning"] * 100,
            "unit": "%",
        },
        {
            "benchmark": "view_check_looks_frontal_test",
            "value": figures["looks_frontal"] * 100,
            "unit": "%",
        },
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures as a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="test", choices=["test", "val"])
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    figures = measure(args.split, args.limit)
    print(f"View check on the {args.split} split (no real lateral films exist in the data)")
    print(
        f"{'group':<26}{'n':>6}  {'false warning (95% CI)':<26}{'looks frontal':>14}"
        f"{'median':>8}  {'SYNTHETIC laterals caught':>26}"
    )
    for group, row in sorted(figures.items()):
        interval = f"{row['false_warning']:.1%} ({row['fw_low']:.1%}-{row['fw_high']:.1%})"
        print(
            f"{group:<26}{int(row['n']):>6}  {interval:<26}{row['looks_frontal']:>14.1%}"
            f"{row['median_contrast']:>8.2f}  {row['synthetic_caught']:>26.1%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
