"""The one name of a scan in pickers and captions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.labels import scan_label


@dataclass(frozen=True)
class _Scan:
    scan_date: date
    filename: str


def test_a_scan_is_named_by_its_date_then_its_file() -> None:
    assert scan_label(_Scan(date(2026, 4, 1), "april.png")) == "2026-04-01 - april.png"


def test_single_digit_months_and_days_are_zero_padded_so_labels_sort_by_date() -> None:
    labels = [scan_label(_Scan(day, "x.dcm")) for day in (date(2026, 1, 9), date(2026, 10, 1))]
    assert labels == ["2026-01-09 - x.dcm", "2026-10-01 - x.dcm"]
    assert sorted(labels) == labels
