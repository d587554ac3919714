"""Run every benchmark of the project and print one table.

Each ``benchmarks/bench_*.py`` module that defines ``run() -> list[dict]``
(rows ``{"benchmark", "value", "unit"}``) is imported and run in turn; a
module that fails to import or whose ``run()`` raises is skipped with the
reason printed, and the others still run. The training time recorded by
``models/train.py`` in ``training_metrics.json`` beside the checkpoint is
added when present.

Run: ``.venv/bin/python benchmarks/run_all.py [--json FILE] [--only NAME ...]``;
``--json`` saves the rows to compare figures across commits.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCHMARK_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCHMARK_DIR.parent

if str(PROJECT_ROOT) not in sys.path:
    # Run as a script: make the project and the benchmark modules importable.
    sys.path.insert(0, str(PROJECT_ROOT))

from core.settings import load_settings  # noqa: E402


def discover(only: Sequence[str] = ()) -> list[str]:
    """Names of the benchmark modules, e.g. ``['bench_imaging', 'bench_model']``.

    Args:
        only: Keep only these names (with or without the ``bench_`` prefix); all when empty.

    Returns:
        Module names in alphabetical order.
    """
    names = sorted(path.stem for path in BENCHMARK_DIR.glob("bench_*.py"))
    wanted = {name if name.startswith("bench_") else f"bench_{name}" for name in only}
    return [name for name in names if not wanted or name in wanted]


def run_module(name: str) -> tuple[list[dict], str | None]:
    """Import ``benchmarks.<name>`` and call its ``run()``.

    Args:
        name: Module name such as ``'bench_model'``.

    Returns:
        The rows, each tagged with ``"module"``, and ``None``; or no rows and the
        reason the module was skipped.
    """
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except Exception as exc:  # any import failure skips only this module
        return [], f"import failed: {type(exc).__name__}: {exc}"
    run = getattr(module, "run", None)
    if not callable(run):
        return [], "no run() function"
    try:
        rows = run()
    except Exception as exc:  # a failing benchmark must not stop the others
        return [], f"run() raised {type(exc).__name__}: {exc}"
    return [{**row, "module": name} for row in rows], None


def training_rows() -> list[dict]:
    """The recorded training time, from ``training_metrics.json`` beside the checkpoint.

    Returns:
        One row in seconds, or none when the file is absent or has no ``seconds``.
    """
    path = load_settings().checkpoint_path.with_name("training_metrics.json")
    try:
        metrics = json.loads(path.read_text())
        seconds = float(metrics["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    architecture = metrics.get("architecture", "model")
    label = f"training time ({architecture}, {len(metrics.get('history', []))} epochs)"
    return [
        {"benchmark": label, "value": round(seconds, 1), "unit": "seconds", "module": path.name}
    ]


def format_table(rows: list[dict]) -> str:
    """Render rows as an aligned text table with columns benchmark, value, unit, module."""
    headers = ("benchmark", "value", "unit", "module")
    cells = [
        (str(row["benchmark"]), f"{row['value']:g}", str(row["unit"]), str(row["module"]))
        for row in rows
    ]
    widths = [
        max([len(header)] + [len(cell[i]) for cell in cells]) for i, header in enumerate(headers)
    ]
    lines = [
        f"{headers[0]:<{widths[0]}}  {headers[1]:>{widths[1]}}  "
        f"{headers[2]:<{widths[2]}}  {headers[3]}"
    ]
    lines += [f"{b:<{widths[0]}}  {v:>{widths[1]}}  {u:<{widths[2]}}  {m}" for b, v, u, m in cells]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table, optionally save the rows as JSON.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        0 when every module ran, 1 when any was skipped.
    """
    parser = argparse.ArgumentParser(
        prog="benchmarks/run_all.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also save the rows to FILE as JSON"
    )
    parser.add_argument(
        "--only", nargs="+", default=(), metavar="NAME", help="run only these modules"
    )
    args = parser.parse_args(argv)

    rows: list[dict] = []
    skipped: dict[str, str] = {}
    for name in discover(args.only):
        print(f"running {name} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        module_rows, reason = run_module(name)
        if reason is None:
            rows += module_rows
            print(f"  done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        else:
            skipped[name] = reason
            print(f"  skipped {name}: {reason}", file=sys.stderr, flush=True)
    rows += training_rows()

    if rows:
        print(format_table(rows))
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "rows": rows,
            "skipped": skipped,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
