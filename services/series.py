"""Entering a series: check each chosen file before saving, and say what each row still needs.

The upload page shows one row per file (thumbnail, date, view, status) whether one file or
many were chosen; this module fills the rows from the files and decides whether the series
may be saved. Saving itself goes through :func:`services.imports.import_scans`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from core.errors import UserError
from core.imaging import DecodedScan, decode_scan
from core.scan_dates import EARLIEST_PLAUSIBLE_YEAR, FileDate, suggested_date
from core.thumbnails import thumbnail_url
from core.views import View
from storage.actor import Actor
from storage.db import Database
from storage.scans import SavedCopy, find_saved_files


@dataclass(frozen=True)
class SeriesFile:
    """One chosen file, checked.

    Attributes:
        name: The file's name.
        scan: The decoded file; None when it cannot be used.
        error: Why it cannot be used (one sentence), else None.
        suggested: The date the file suggests, with its source, or None.
        header_view: The view its DICOM header states, or None.
        thumbnail: A small PNG as a ``data:`` URL, or None.
        saved: The scan already saved from this very file, or None.
        same_as: The name of an earlier file in the same selection with the same content
            (it is saved once, from that row), or None.
    """

    name: str
    scan: DecodedScan | None = None
    error: str | None = None
    suggested: FileDate | None = None
    header_view: View | None = None
    thumbnail: str | None = None
    saved: SavedCopy | None = None
    same_as: str | None = None

    @property
    def to_save(self) -> bool:
        """Usable, not yet in the record, and not a repeat of an earlier row."""
        return self.scan is not None and self.saved is None and self.same_as is None


def check_files(
    db: Database, actor: Actor, files: Sequence[tuple[str, bytes]], today: date
) -> list[SeriesFile]:
    """Decode each file and find what it says about its date and view, and if it is saved.

    Args:
        db: Database handle.
        actor: The patient.
        files: ``(name, bytes)`` per file, in the order chosen.
        today: Today's date (no suggested date is later).

    Returns:
        One :class:`SeriesFile` per file, in order; a file that cannot be decoded has its
        one-sentence reason and is never saved.

    Raises:
        storage.policy.AccessDenied: The actor is not an active patient.
    """
    saved = find_saved_files(db, actor, [data for _, data in files])
    first_named: dict[bytes, str] = {}
    checked = []
    for position, (name, data) in enumerate(files):
        # Held in memory for this check only, never stored.
        digest = hashlib.sha256(data).digest()
        if digest in first_named:
            checked.append(SeriesFile(name, same_as=first_named[digest]))
            continue
        first_named[digest] = name
        try:
            scan = decode_scan(data, name, max_bytes=db.settings.max_upload_bytes)
        except UserError as err:
            checked.append(SeriesFile(name, error=str(err)))
            continue
        suggested = suggested_date(scan.metadata.study_date, data, name, today)
        checked.append(
            SeriesFile(
                name,
                scan,
                suggested=suggested,
                header_view=scan.metadata.view,
                thumbnail=thumbnail_url(scan.pixels),
                saved=saved.get(position),
            )
        )
    return checked


def row_problem(scan_date: date | None, view: View | None, today: date) -> str | None:
    """What one row to be saved still needs, or None when it is ready.

    Args:
        scan_date: The row's date, or None when empty.
        view: The row's view, or None when not chosen (``View.UNKNOWN`` is a choice).
        today: Today's date.

    Returns:
        One sentence, or None.
    """
    if scan_date is None or view is None:
        missing = [
            words
            for words, absent in (
                ("the date the X-ray was taken", scan_date is None),
                ("its view", view is None),
            )
            if absent
        ]
        return "Enter " + " and ".join(missing) + "."
    if scan_date > today:
        return "The date is in the future; enter the date the X-ray was taken."
    if scan_date.year < EARLIEST_PLAUSIBLE_YEAR:
        return f"The date is before {EARLIEST_PLAUSIBLE_YEAR}; enter the real date of the X-ray."
    return None


def series_problems(
    files: Sequence[SeriesFile],
    dates: Mapping[int, date | None],
    views: Mapping[int, View | None],
    today: date,
) -> dict[int, str]:
    """What each row to be saved still needs; the series may be saved when none does.

    Args:
        files: The checked files.
        dates: The date of each row (by position), as entered.
        views: The view of each row (by position), as chosen.
        today: Today's date.

    Returns:
        ``{position: sentence}`` for the rows not ready; files that cannot be used or are
        already saved need nothing (they are not saved).
    """
    problems = {}
    for position, file in enumerate(files):
        if not file.to_save:
            continue
        problem = row_problem(dates.get(position), views.get(position), today)
        if problem is not None:
            problems[position] = problem
    return problems
