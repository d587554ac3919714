"""Classify files from the command line: ``python -m models.predict [--age YEARS] FILE [FILE ...]``.

Prints one JSON object per line per file:
``{"file", "ok", "abstained", "probabilities", "model_version", "error"}`` plus
``abstain_reason`` (one sentence) when the model abstains, and ``population`` and
``thresholds``: whose calibration was applied (``child`` or ``adult`` from ``--age``,
``unknown`` without it) and the thresholds that go with it.
Probabilities are present even when the model abstains (the UI hides them then).
Exit status 0 when every file was read, 2 otherwise, 1 when the model is unavailable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.imaging import ScanError, decode_scan
from models.inference import ModelUnavailable, load_classifier


def _line(file: str, **fields) -> str:
    record = {
        "file": file,
        "ok": False,
        "abstained": None,
        "probabilities": None,
        "model_version": None,
        "error": None,
        "abstain_reason": None,
        "population": None,
        "thresholds": None,
    }
    record.update(fields)
    return json.dumps(record)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        description="Classify chest radiographs (decision support, not a diagnosis)."
    )
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument(
        "--age", type=int, default=None, help="the patient's age in years, when known"
    )
    args = parser.parse_args(argv)
    try:
        classifier = load_classifier(args.checkpoint)
    except ModelUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 1
    status = 0
    for path in args.files:
        try:
            scan = decode_scan(path.read_bytes(), path.name)
        except OSError:
            print(_line(str(path), error="This file could not be opened."))
            status = 2
            continue
        except ScanError as exc:
            print(_line(str(path), error=str(exc)))
            status = 2
            continue
        (prediction,) = classifier.predict([scan], ages=[args.age])
        print(
            _line(
                str(path),
                ok=True,
                abstained=prediction.abstained,
                probabilities=prediction.probabilities,
                model_version=classifier.info.version,
                abstain_reason=prediction.abstain_reason,
                population=prediction.population,
                thresholds=prediction.thresholds,
            )
        )
    return status


if __name__ == "__main__":
    raise SystemExit(main())
