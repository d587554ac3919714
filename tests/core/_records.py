"""Builders of scan summaries and results shaped like ``storage.records`` returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from core.findings import FINDINGS


@dataclass
class Result:
    """Same fields as ``storage.records.ResultRecord``."""

    id: int
    probabilities: dict[str, float]
    model_name: str = "cxr-densenet"
    model_version: str = "1"
    checkpoint_sha256: str = "0" * 64
    abstained: bool = False
    abstain_reason: str | None = None
    ood_score: float = 0.0
    thresholds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FINDINGS, 0.5))
    created_at: datetime = datetime(2026, 1, 1)


@dataclass
class Scan:
    """Same fields as ``storage.records.ScanSummary``."""

    id: int
    scan_date: date
    filename: str = "scan.png"
    modality: str | None = None
    results: list[Result] = field(default_factory=list)


def probs(pneumonia: float, bacterial: float = 0.05, viral: float = 0.05, covid: float = 0.02) -> dict[str, float]:
    """Probabilities for the four findings, in FINDINGS order."""
    return dict(zip(FINDINGS, (pneumonia, bacterial, viral, covid), strict=True))
