"""Importing scans: decode, abstain or classify, then save; one file or a batch.

The upload page and ``python -m storage.cli import-scan`` both store scans through this module,
so a scan gets the same date, view, result and record whichever way it came in. Every scan has
a view (projection): the uploader's choice, else the DICOM header's; only frontal views are
scored, since the model was trained on frontal films only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

from core.age import age_at
from core.enhance import EnhanceSettings
from core.errors import UserError
from core.imaging import DecodedScan, decode_scan
from core.scan_dates import EARLIEST_PLAUSIBLE_YEAR
from core.scan_reading import ScanReading
from core.scope import not_a_chest_radiograph
from core.view_check import check_view
from core.views import (
    NOT_SCORED_SENTENCE,
    UNKNOWN_NOT_SCORED_SENTENCE,
    VIEW_LABELS,
    View,
    is_frontal,
)
from services.records import read_patient
from storage.actor import Actor
from storage.db import Database
from storage.profile import get_birth_year
from storage.results import ResultIn
from storage.scans import AlreadySaved, save_scan

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from models.inference import Classifier


class MissingScanDate(UserError):
    """A file without a usable date of its own, imported without a date to fall back on."""

    code = "missing_scan_date"
    default_message = "This file has no date of its own; enter the date above and try again."


class NotAChestRadiograph(UserError):
    """A decodable file that is not a chest radiograph (``core.scope``); never saved."""

    code = "not_a_chest_radiograph"
    default_message = "This is not a chest X-ray."


class MissingScanView(UserError):
    """A file whose view was neither chosen by the uploader nor stated by its DICOM header."""

    code = "missing_scan_view"
    default_message = (
        "This file does not say whether it is a frontal or a side view; choose its view "
        "and try again."
    )


@dataclass(frozen=True)
class Scored:
    """The model's result computed for a preview, reused when the file is saved as previewed.

    Attributes:
        view: The view it was scored for.
        age: The patient's age it was scored for.
        result: The result (None for a view that is not scored).
    """

    view: View
    age: int | None
    result: ResultIn | None


@dataclass(frozen=True)
class ScanFile:
    """One file to import.

    Attributes:
        name: The file's name as its owner knows it (stored, encrypted, with the scan).
        read: Returns the file's content; an ``OSError`` fails this file only.
        view: The view the uploader chose (``View.UNKNOWN`` when they do not know), or
            ``None`` to take it from the DICOM header; a file whose header does not state
            it then fails with :class:`MissingScanView`. Never defaulted.
        scan_date: The date the uploader gave this file (the upload table), or None to take
            the import's dates (see :func:`import_scans`).
        enhancement: How the uploader chose to display it (defaults when None).
        decoded: The file as the preview decoded it (it is not decoded again), or None.
        scored: The preview's result, reused when the file is saved with the same view and
            age (it is not classified again), or None.
    """

    name: str
    read: Callable[[], bytes]
    view: View | None
    scan_date: date | None = None
    enhancement: EnhanceSettings | None = None
    decoded: DecodedScan | None = None
    scored: Scored | None = None


@dataclass(frozen=True)
class ImportedScan:
    """What became of one imported file.

    Attributes:
        filename: The file's name.
        scan_id: The stored scan, ``None`` when the file could not be used.
        result: The stored result; ``None`` when the file failed, no model was available or
            its view is not scored.
        error: Why the file could not be used (one sentence), ``None`` when it was stored.
        error_code: The ``code`` of the error (e.g. ``"missing_scan_view"``), for callers
            that add their own hint.
        view: The view stored with the scan.
        notes: Sentences for the uploader: the chosen view overrode the header's, the image
            does not look like its view, the scan was not scored because of its view.
        already_saved: The same file was already in the record (``scan_id`` is that scan,
            ``notes`` says when it was saved); nothing was stored again.
        reading: The scan's reading as every page shows it (None when nothing was stored).
    """

    filename: str
    scan_id: int | None = None
    result: ResultIn | None = None
    error: str | None = None
    error_code: str | None = None
    view: View | None = None
    notes: tuple[str, ...] = ()
    already_saved: bool = False
    reading: ScanReading | None = None

    @property
    def ok(self) -> bool:
        """Whether the file was stored."""
        return self.error is None


@dataclass(frozen=True)
class ImportReport:
    """What became of every file of an import, in the order given.

    Attributes:
        items: One outcome per file.
    """

    items: tuple[ImportedScan, ...]

    @property
    def all_ok(self) -> bool:
        """Whether every file was stored."""
        return all(item.ok for item in self.items)

    @property
    def summary(self) -> str:
        """One sentence, e.g. ``"2 of 3 files were saved; 1 could not be used."``."""
        saved = sum(item.ok and not item.already_saved for item in self.items)
        known = sum(item.already_saved for item in self.items)
        failed = len(self.items) - saved - known
        noun = "file was" if len(self.items) == 1 else "files were"
        sentence = f"{saved} of {len(self.items)} {noun} saved"
        if known:
            sentence += f"; {known} {'was' if known == 1 else 'were'} already in your record"
        return sentence + (f"; {failed} could not be used." if failed else ".")


#: ``on_progress(done, total, outcome)``: called after each file, ``done`` counting from 1.
ImportProgress = Callable[[int, int, ImportedScan], None]


def usable_study_date(scan: DecodedScan) -> date | None:
    """The date the file gives for the X-ray (DICOM Study Date), when it is plausible.

    Args:
        scan: The decoded file.

    Returns:
        The date, or ``None`` when the file has none or only an anonymisation placeholder
        (before :data:`EARLIEST_PLAUSIBLE_YEAR`), so that someone must enter it.
    """
    study = scan.metadata.study_date
    return study if study is not None and study.year >= EARLIEST_PLAUSIBLE_YEAR else None


def resolve_view(scan: DecodedScan, chosen: View | None) -> View:
    """The view to store: the uploader's choice, else the one the DICOM header states.

    Args:
        scan: The decoded file.
        chosen: The uploader's choice, ``None`` when they left it to the file.

    Returns:
        The view.

    Raises:
        MissingScanView: Nobody chose a view and the file does not state one (every PNG and
            JPEG, and DICOM files without View Position or Patient Orientation).
    """
    if chosen is not None:
        return View(chosen)
    if scan.metadata.view is None:
        raise MissingScanView()
    return scan.metadata.view


def view_notes(scan: DecodedScan, view: View) -> tuple[str, ...]:
    """What to tell the uploader about a scan's view before or after it is saved.

    Args:
        scan: The decoded file.
        view: The view it is stored with.

    Returns:
        Sentences, in order: the header stated another view; the image does not look like
        ``view`` (:func:`core.view_check.check_view`); the scan is not scored.
    """
    notes = []
    stated = scan.metadata.view
    if stated is not None and stated is not view:
        notes.append(
            f'The file says its view is "{VIEW_LABELS[stated]}"; it was saved as '
            f'"{VIEW_LABELS[view]}", as you chose.'
        )
    warning = check_view(scan.pixels, view).warning
    if warning is not None:
        notes.append(warning)
    if view is View.LATERAL:
        notes.append(NOT_SCORED_SENTENCE)
    elif not is_frontal(view):
        notes.append(UNKNOWN_NOT_SCORED_SENTENCE)
    return tuple(notes)


def scan_age(scan: DecodedScan, scan_date: date, birth_year: int | None) -> int | None:
    """The patient's age when the X-ray was taken: the file's own, else from the birth year.

    Args:
        scan: The decoded file (DICOM Patient's Age (0010,1010) when it states one).
        scan_date: The date the X-ray was taken.
        birth_year: The account's birth year, or None.

    Returns:
        Age in years, or None when neither is known.
    """
    if scan.metadata.patient_age is not None:
        return scan.metadata.patient_age
    return age_at(birth_year, scan_date)


def score_if_frontal(
    classifier: Classifier | None, scan: DecodedScan, view: View, age: int | None = None
) -> ResultIn | None:
    """The model's result for a frontal film; ``None`` for any other view or without a model.

    Side views and films of unknown view are never scored: the model was trained on frontal
    films only, and an unconfirmed view could be a side view.

    Args:
        classifier: The loaded model, or ``None`` when unavailable.
        scan: The decoded scan.
        view: The view it is stored with.
        age: The patient's age at the scan (:func:`scan_age`), or None when unknown.

    Returns:
        Output of :func:`classify`, or ``None``.
    """
    if classifier is None or not is_frontal(view):
        return None
    return classify(classifier, scan, age)


def classify(classifier: Classifier, scan: DecodedScan, age: int | None = None) -> ResultIn:
    """The model's result for one scan, ready to store; an abstention is a result too.

    Callers score frontal films only (:func:`score_if_frontal`).

    Args:
        classifier: The loaded model.
        scan: The decoded scan.
        age: The patient's age when the file states none (from the account's birth year).

    Returns:
        The result, with the model's name, version and checksum, and the thresholds of the
        patient's population: child or adult by the DICOM Patient's Age (0010,1010) where the
        file states it, else by ``age``, else the unknown-age thresholds.
    """
    stated = scan.metadata.patient_age
    [prediction] = classifier.predict([scan], ages=[stated if stated is not None else age])
    return ResultIn.from_prediction(prediction, classifier.info)


def save_decoded_scan(
    db: Database,
    actor: Actor,
    scan: DecodedScan,
    *,
    scan_date: date,
    filename: str,
    view: View,
    result: ResultIn | None,
    enhancement: EnhanceSettings | None = None,
    content: bytes | None = None,
    keep_original: bool = False,
    patient_id: int | None = None,
) -> int:
    """Store a decoded scan in the patient's record, with its display settings and result.

    Args:
        db: Database handle.
        actor: The patient.
        scan: The decoded file.
        scan_date: The date the X-ray was taken.
        filename: The file's name.
        view: The film's projection (:func:`resolve_view`).
        result: Output of :func:`score_if_frontal`: ``None`` when no model was available or
            the view is not scored.
        enhancement: How the patient chose to display the image (defaults when ``None``).
        content: The file's bytes, so the same file is recognised if saved again.
        keep_original: Keep ``content`` itself too, encrypted, to download later (only when
            the patient asks: it takes more of their storage).
        patient_id: Whose record: the actor's own (None), or a patient who allowed the
            clinician ``actor`` to add films (``storage.scans.save_scan``).

    Returns:
        The new scan's id.

    Raises:
        storage.policy.AccessDenied: The actor may not add a scan to this record.
        storage.scans.AlreadySaved: The same file is already in the record; nothing stored.
    """
    return save_scan(
        db,
        actor,
        pixels=scan.pixels,
        metadata=scan.metadata.to_dict(),
        enhancement=(enhancement or EnhanceSettings()).to_dict(),
        scan_date=scan_date,
        filename=filename,
        view=view,
        view_doubt=view_doubt(scan, view),
        result=result,
        content=content,
        keep_original=keep_original,
        patient_id=patient_id,
    )


def view_doubt(scan: DecodedScan, view: View) -> str | None:
    """The view check's warning about a frontal film that does not look frontal, else None.

    Kept with the scan, whose reading then says "view uncertain" (``core.scan_reading``).

    Args:
        scan: The decoded file.
        view: The view it is saved with.

    Returns:
        The warning sentence, or None (always None for a view that is not frontal).
    """
    return check_view(scan.pixels, view).warning if is_frontal(view) else None


def refuse_if_not_chest(scan: DecodedScan) -> None:
    """Refuse a decodable file that is not a chest radiograph, before its date or view.

    Args:
        scan: The decoded file.

    Raises:
        NotAChestRadiograph: With its one sentence (``core.scope.not_a_chest_radiograph``).
    """
    reason = not_a_chest_radiograph(scan)
    if reason is not None:
        raise NotAChestRadiograph(reason)


def import_scans(
    db: Database,
    actor: Actor,
    files: Iterable[ScanFile],
    classifier: Classifier | None,
    *,
    total: int | None = None,
    scan_date: date | None = None,
    fallback_date: date | None = None,
    on_progress: ImportProgress | None = None,
    keep_original: bool = False,
    patient_id: int | None = None,
) -> ImportReport:
    """Decode, classify (or abstain) and store each file; an unusable file never stops the rest.

    Args:
        db: Database handle.
        actor: The patient who owns the scans.
        files: The files, in order, each with its view (see :class:`ScanFile`); a sequence, or
            an iterator read one file at a time (a CD's files, never all in memory).
        classifier: The loaded model, or ``None`` to store the scans without a result. Only
            frontal films are scored.
        total: How many files an iterator gives, for progress (a sequence's length otherwise).
        scan_date: The date of every file without one of its own in :class:`ScanFile`,
            whatever the files say (the command line's ``--date``).
        fallback_date: The date of files without a usable date of their own (see
            :func:`usable_study_date`); ignored when ``scan_date`` is given.
        on_progress: Called after each file with the count done, the total and its outcome.
        keep_original: Keep each file as uploaded too (see :func:`save_decoded_scan`).
        patient_id: Whose record: the actor's own (None), or a patient who allowed the
            clinician ``actor`` to add films (see :func:`save_decoded_scan`).

    Returns:
        One outcome per file, in order, with its view and notes. A file fails with its
        one-sentence reason when it cannot be read or decoded, has no date or no view, or may
        not be stored for ``actor``. A file already in the record is not stored again: its
        outcome is ``already_saved``, naming that scan. Scores use the patient's age at each
        scan (:func:`scan_age`: the file's, else the account's birth year).

    Raises:
        Exception: Anything else (a fault of the app, not of a file) propagates.
    """
    owner = actor.user_id if patient_id is None else patient_id
    try:
        birth_year = get_birth_year(db, actor, owner)
    except UserError:  # not a patient: each file then fails with the reason when saved
        birth_year = None
    if total is None:
        files = list(files)
        total = len(files)
    outcomes: list[ImportedScan] = []
    for done, file in enumerate(files, start=1):
        try:
            data = file.read()
        except OSError as err:  # a path given on the command line; the OS names what failed
            outcome = ImportedScan(file.name, error=str(err))
        else:
            try:
                outcome = _import_one(
                    db,
                    actor,
                    file,
                    data,
                    classifier,
                    (scan_date, fallback_date),
                    birth_year,
                    (keep_original, owner),
                )
            except AlreadySaved as err:
                outcome = ImportedScan(
                    file.name, err.copy.scan_id, notes=(str(err),), already_saved=True
                )
            except UserError as err:
                outcome = ImportedScan(file.name, error=str(err), error_code=err.code)
        outcomes.append(outcome)
        if on_progress is not None:
            on_progress(done, total, outcome)
    return ImportReport(tuple(_with_readings(db, actor, owner, outcomes, classifier)))


def _with_readings(
    db: Database,
    actor: Actor,
    owner: int,
    outcomes: list[ImportedScan],
    classifier: Classifier | None,
) -> list[ImportedScan]:
    """Each stored scan's reading, read with the whole record as every page reads it."""
    if not any(outcome.scan_id is not None for outcome in outcomes):
        return outcomes
    record = read_patient(db, actor, owner, classifier)
    return [
        replace(outcome, reading=record.reading(outcome.scan_id))
        if outcome.scan_id is not None
        else outcome
        for outcome in outcomes
    ]


def _import_one(
    db: Database,
    actor: Actor,
    file: ScanFile,
    data: bytes,
    classifier: Classifier | None,
    dates: tuple[date | None, date | None],
    birth_year: int | None,
    kept_for: tuple[bool, int],
) -> ImportedScan:
    keep_original, owner = kept_for
    name = file.name
    scan_date, fallback_date = dates
    scan = file.decoded
    if scan is None:
        scan = decode_scan(data, name, max_bytes=db.settings.max_upload_bytes)
    refuse_if_not_chest(scan)
    when = file.scan_date or scan_date or usable_study_date(scan) or fallback_date
    if when is None:
        raise MissingScanDate()
    view = resolve_view(scan, file.view)
    age = scan_age(scan, when, birth_year)
    scored = file.scored
    if scored is not None and scored.view is view and scored.age == age:
        result = scored.result
    else:
        result = score_if_frontal(classifier, scan, view, age)
    scan_id = save_decoded_scan(
        db,
        actor,
        scan,
        scan_date=when,
        filename=name,
        view=view,
        result=result,
        enhancement=file.enhancement,
        content=data,
        keep_original=keep_original,
        patient_id=owner,
    )
    return ImportedScan(name, scan_id, result, view=view, notes=view_notes(scan, view))
