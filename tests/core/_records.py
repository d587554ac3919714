"""Builders of the real ``storage.scans`` summaries and their results, for core tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

from core.findings import FINDINGS
from core.views import View
from storage.results import ResultRecord
from storage.scans import ScanSummary

_CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def make_result(
    id: int,  # shadows the builtin on purpose: the record's field name
    probabilities: dict[str, float],
    *,
    model_version: str = "1",
    abstained: bool = False,
    abstain_reason: str | None = None,
    thresholds: dict[str, float] | None = None,
    scan_id: int = 0,
) -> ResultRecord:
    """A stored result with default model name, checksum and 0.5 thresholds."""
    return ResultRecord(
        probabilities=probabilities,
        model_name="cxr-densenet",
        model_version=model_version,
        checkpoint_sha256="0" * 64,
        abstained=abstained,
        abstain_reason=abstain_reason,
        ood_score=0.0,
        thresholds=dict.fromkeys(FINDINGS, 0.5) if thresholds is None else thresholds,
        id=id,
        scan_id=scan_id,
        created_at=_CREATED,
    )


def make_scan(
    id: int,  # shadows the builtin on purpose: the record's field name
    scan_date: date,
    filename: str = "scan.png",
    *,
    results: list[ResultRecord] | None = None,
    view: View = View.PA,
) -> ScanSummary:
    """A scan summary of patient 1, a PA film unless told otherwise."""
    return ScanSummary(id, 1, scan_date, filename, None, list(results or []), _CREATED, view)


def probs(
    pneumonia: float, bacterial: float = 0.05, viral: float = 0.05, covid: float = 0.02
) -> dict[str, float]:
    """Probabilities for the four findings, in FINDINGS order."""
    return dict(zip(FINDINGS, (pneumonia, bacterial, viral, covid), strict=True))
