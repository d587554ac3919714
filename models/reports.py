"""JSON reports that describe one checkpoint (evaluation, noise bands), read without torch.

Kept apart from ``models.checkpoint`` so that the command line, exports and pages that only
read a report do not pay for importing torch.
"""

from __future__ import annotations

import json
from pathlib import Path

#: The evaluation report next to the shipped checkpoint, holding its validity table.
METRICS_PATH = Path(__file__).resolve().parent / "metrics.json"


def report_for_checkpoint(path: Path, sha256: str) -> dict | None:
    """A JSON report about one checkpoint (evaluation, noise), if it describes that very file.

    Args:
        path: The report, with ``{"model": {"sha256": ...}}``.
        sha256: SHA-256 of the loaded checkpoint.

    Returns:
        The parsed report, or None when it is missing, unreadable or about another checkpoint.
    """
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("model", {}).get("sha256") != sha256:
        return None
    return report
