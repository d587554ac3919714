"""The one name of a scan in pickers, captions and reports: its date and view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.labels import format_day, scan_label, scan_labels
from core.views import View


@dataclass(frozen=True)
class _Scan:
    id: int
    scan_date: date
    view: View = View.PA
    filename: str = "1.2.840.113619.2.55.3.dcm"


def test_a_scan_is_named_by_its_date_and_view_never_its_file_name() -> None:
    label = scan_label(_Scan(1, date(2026, 4, 1)))
    assert label == "1 Apr 2026, frontal (PA, standing)"
    assert ".dcm" not in label


def test_an_unknown_view_says_so() -> None:
    assert scan_label(_Scan(1, date(2026, 1, 9), View.UNKNOWN)) == "9 Jan 2026, view not known"


def test_days_have_no_leading_zero() -> None:
    assert format_day(date(2026, 1, 9)) == "9 Jan 2026"


def test_scans_sharing_a_label_are_numbered_in_the_order_they_were_stored() -> None:
    scans = [
        _Scan(7, date(2026, 4, 1)),
        _Scan(3, date(2026, 4, 1)),
        _Scan(5, date(2026, 4, 1), View.LATERAL),
    ]
    labels = scan_labels(scans)
    assert list(labels) == [7, 3, 5]
    assert labels[3] == "1 Apr 2026, frontal (PA, standing) (1)"
    assert labels[7] == "1 Apr 2026, frontal (PA, standing) (2)"
    assert labels[5] == "1 Apr 2026, side (lateral)"
