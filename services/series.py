"""Entering a series: check each chosen file before saving, and say what each row still needs.

The upload page shows one row per file (thumbnail, date, view, status) whether one file or
many were chosen; this module fills the rows from the files and decides whether the series
may be saved. Saving itself goes through :func:`services.imports.import_scans`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from core.errors import UserError
from core.imaging import DecodedScan, decode_scan
from core.labels import scan_label
from core.scan_dates import EARLIEST_PLAUSIBLE_YEAR, FileDate, suggested_date
from core.scan_reading import ScanReading, ScanStatus, read_result_of
from core.scope import not_a_chest_radiograph
from core.thumbnails import thumbnail_url
from core.views import NOT_SCORED_SENTENCE, UNKNOWN_NOT_SCORED_SENTENCE, View, is_frontal
from services.imports import Scored, scan_age, score_if_frontal, view_doubt
from services.validity import patient_population, validity_of
from storage.actor import Actor
from storage.db import Database
from storage.profile import get_birth_year, set_birth_year
from storage.scans import SavedCopy, find_saved_files

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from models.inference import Classifier


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
        # Refused before anyone is asked a date or a view: it is not a film to keep.
        refusal = not_a_chest_radiograph(scan)
        if refusal is not None:
            checked.append(SeriesFile(name, error=refusal))
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


def view_doubts(files: Sequence[SeriesFile], views: Mapping[int, View | None]) -> dict[int, str]:
    """Rows to be saved as frontal whose image does not look frontal (``core.view_check``).

    Args:
        files: The checked files.
        views: The view of each row (by position), as chosen.

    Returns:
        ``{position: the check's sentence}``; each such row needs the patient's confirmation.
    """
    doubts = {}
    for position, file in enumerate(files):
        view = views.get(position)
        if file.to_save and file.scan is not None and view is not None:
            doubt = view_doubt(file.scan, view)
            if doubt is not None:
                doubts[position] = doubt
    return doubts


#: What a row whose view the check doubts still needs.
CONFIRM_VIEW_SENTENCE = (
    "Confirm its view below: the image does not look like a frontal film, so it may be a side "
    'view; if you keep the frontal view, its numbers are shown as "view uncertain".'
)


def series_problems(
    files: Sequence[SeriesFile],
    dates: Mapping[int, date | None],
    views: Mapping[int, View | None],
    today: date,
    confirmed: Collection[int] = (),
) -> dict[int, str]:
    """What each row to be saved still needs; the series may be saved when none does.

    Args:
        files: The checked files.
        dates: The date of each row (by position), as entered.
        views: The view of each row (by position), as chosen.
        today: Today's date.
        confirmed: Rows whose doubtful frontal view the patient confirmed (:func:`view_doubts`).

    Returns:
        ``{position: sentence}`` for the rows not ready; files that cannot be used or are
        already saved need nothing (they are not saved).
    """
    problems = {}
    doubts = view_doubts(files, views)
    for position, file in enumerate(files):
        if not file.to_save:
            continue
        problem = row_problem(dates.get(position), views.get(position), today)
        if problem is None and position in doubts and position not in confirmed:
            problem = CONFIRM_VIEW_SENTENCE
        if problem is not None:
            problems[position] = problem
    return problems


@dataclass(frozen=True)
class UploadPreview:
    """One file's closer look before saving: its reading and the result to reuse at Save.

    Attributes:
        reading: What every page will say of it once saved (without its history).
        scored: The model's result for the row's view and age, handed to Save so the file is
            not classified again.
    """

    reading: ScanReading
    scored: Scored


def preview(
    file: SeriesFile,
    view: View,
    scan_date: date,
    birth_year: int | None,
    classifier: Classifier | None,
    scored: Scored | None = None,
    *,
    view_confirmed: bool = False,
) -> UploadPreview:
    """Read one usable file as it would be saved, scoring it unless ``scored`` still applies.

    Args:
        file: A usable checked file.
        view: The row's view.
        scan_date: The row's date.
        birth_year: The patient's birth year, or None.
        classifier: The current model, or None.
        scored: A result computed earlier for this file (reused when its view and age match).
        view_confirmed: The patient confirmed a doubtful frontal view.

    Returns:
        The preview.

    Raises:
        ValueError: ``file`` has no decoded scan.
    """
    scan = file.scan
    if scan is None:
        raise ValueError("preview needs a usable file")
    age = scan_age(scan, scan_date, birth_year)
    if scored is None or scored.view is not view or scored.age != age:
        scored = Scored(view, age, score_if_frontal(classifier, scan, view, age))
    label = f"{file.name} ({scan_label(_Film(scan_date, view))})"
    population = patient_population(
        scored.result.population if scored.result else None, birth_year, scan_date
    )
    if scored.result is not None:
        reading = read_result_of(
            scored.result,
            validity_of(scored.result.checkpoint_sha256),
            population,
            scan_id=0,
            scan_date=scan_date,
            view=view,
            label=label,
            view_doubt=view_doubt(scan, view) if view_confirmed else None,
        )
    else:
        sentence = (
            NOT_SCORED_SENTENCE
            if view is View.LATERAL
            else UNKNOWN_NOT_SCORED_SENTENCE
            if not is_frontal(view)
            else "The model is not available, so this film is saved without a result."
        )
        reading = ScanReading(
            scan_id=0,
            scan_date=scan_date,
            view=view,
            label=label,
            status=ScanStatus.NOT_SCORED_VIEW
            if not is_frontal(view)
            else ScanStatus.AWAITING_RESCORE,
            headline=sentence,
            reason=sentence,
            population=population,
        )
    return UploadPreview(reading, scored)


@dataclass(frozen=True)
class _Film:
    scan_date: date
    view: View


__all__ = ["get_birth_year", "set_birth_year"]
