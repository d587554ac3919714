"""How a scan is named wherever a user picks or sees one (pickers, captions, titles)."""

from __future__ import annotations

from datetime import date
from typing import Protocol


class LabelledScan(Protocol):
    """The fields of a stored scan (``ScanSummary``, ``ScanRecord``) a label reads."""

    @property
    def scan_date(self) -> date: ...

    @property
    def filename(self) -> str: ...


def scan_label(scan: LabelledScan) -> str:
    """The one name of a scan: its date, then its file name.

    Two scans can share both, so pickers should key their options by scan id and use this only
    to display them.

    Args:
        scan: A stored scan.

    Returns:
        E.g. ``"2026-04-01 - april.png"``.
    """
    return f"{scan.scan_date.isoformat()} - {scan.filename}"
