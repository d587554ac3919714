"""Builders of the real ``storage.scans`` summaries and their results, for core tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from core.findings import FINDINGS
from core.reading import ADULT, CHILD, UNKNOWN
from core.scan_reading import DEFAULT_RISE_MARGIN, ScanReading, read_scans
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
    view_doubt: str | None = None,
) -> ScanSummary:
    """A scan summary of patient 1, a PA film unless told otherwise."""
    return ScanSummary(
        id, 1, scan_date, filename, None, list(results or []), _CREATED, view, view_doubt
    )


def probs(
    pneumonia: float, bacterial: float = 0.05, viral: float = 0.05, covid: float = 0.02
) -> dict[str, float]:
    """Probabilities for the four findings, in FINDINGS order."""
    return dict(zip(FINDINGS, (pneumonia, bacterial, viral, covid), strict=True))


@dataclass(frozen=True)
class Verdict:
    """A validity verdict (``models.validity.FindingValidity`` as ``core.reading`` reads it)."""

    valid: bool


#: The validity table of the shipped model's kind: pneumonia and COVID-19 shown to work for
#: adults, the pneumonia subtypes for children aged 1-5.
VALIDITY: dict[tuple[str, str], Verdict] = {
    (finding, population): Verdict((population == ADULT) == (finding in ("pneumonia", "covid19")))
    for finding in FINDINGS
    for population in (CHILD, ADULT)
}


def read(
    scans: Iterable[ScanSummary],
    *,
    current_version: str | None = "1",
    population: str = UNKNOWN,
    validity: Mapping[tuple[str, str], Verdict] | None = None,
    margin: float = DEFAULT_RISE_MARGIN,
) -> list[ScanReading]:
    """Read scans as ``services.records`` does, for one population and validity table.

    By default the patient's age is not known, so no finding is greyed.
    """
    table = VALIDITY if validity is None else validity
    return read_scans(
        scans,
        current_version=current_version,
        validity_of=lambda _sha: table,
        population_of=lambda _stored, _on: population,
        margin=margin,
    )
