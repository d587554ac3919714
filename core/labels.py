"""How a scan is named wherever a user picks or sees one (pickers, captions, titles, reports).

A scan is named by the day the X-ray was taken and its projection, the two things a patient
knows about a film; the uploaded file's name (often a DICOM number) is not shown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Protocol

from core.views import VIEW_LABELS, View


class DatedFilm(Protocol):
    """What names one film: the day it was taken and its projection."""

    @property
    def scan_date(self) -> date: ...

    @property
    def view(self) -> View: ...


class LabelledScan(DatedFilm, Protocol):
    """The fields of a stored scan (``ScanSummary``, ``ScanRecord``) a list of labels reads."""

    @property
    def id(self) -> int: ...


def format_day(day: date) -> str:
    """A date the way labels and reports print it, e.g. ``"1 Apr 2026"`` (no leading zero)."""
    return f"{day.day} {day:%b %Y}"


def view_words(view: View | str) -> str:
    """The projection in words, e.g. ``"frontal (PA, standing)"``; unknown reads as such."""
    view = View(view)
    if view is View.UNKNOWN:
        return "view not known"
    words = VIEW_LABELS[view]
    return words[0].lower() + words[1:]


def scan_label(scan: DatedFilm) -> str:
    """The name of one scan: its date, then its view.

    Two scans can share both; :func:`scan_labels` tells them apart in a list.

    Args:
        scan: A stored scan, or any film with a date and a view.

    Returns:
        E.g. ``"1 Apr 2026, frontal (PA, standing)"``.
    """
    return f"{format_day(scan.scan_date)}, {view_words(scan.view)}"


def scan_labels(scans: Sequence[LabelledScan]) -> dict[int, str]:
    """Distinct names for a list of scans: :func:`scan_label`, numbered where two coincide.

    Args:
        scans: The scans, in any order.

    Returns:
        Scan id -> label; scans sharing a label get ``" (1)"``, ``" (2)"``, ... in the order
        they were stored (by id), so a name does not change when the list is re-sorted.
    """
    names = {scan.id: scan_label(scan) for scan in scans}
    repeated = Counter(names.values())
    seen: Counter[str] = Counter()
    labels: dict[int, str] = {}
    for scan_id in sorted(names):
        name = names[scan_id]
        if repeated[name] > 1:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        labels[scan_id] = name
    return {scan.id: labels[scan.id] for scan in scans}
