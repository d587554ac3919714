"""Importing scans: decode, abstain or classify, then save; one file or a batch.

The upload page and ``python -m storage.cli import-scan`` both store scans through this module,
so a scan gets the same date, the same result and the same record whichever way it came in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from core.enhance import EnhanceSettings
from core.errors import UserError
from core.imaging import DecodedScan, decode_scan
from storage.actor import Actor
from storage.db import Database
from storage.results import ResultIn
from storage.scans import save_scan

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from models.inference import Classifier

#: Anonymisation tools often write dates like 1901-01-01; no digital radiograph is that old.
EARLIEST_PLAUSIBLE_YEAR = 1950


class MissingScanDate(UserError):
    """A file without a usable date of its own, imported without a date to fall back on."""

    code = "missing_scan_date"
    default_message = "This file has no date of its own; enter the date above and try again."


@dataclass(frozen=True)
class ScanFile:
    """One file to import.

    Attributes:
        name: The file's name as its owner knows it (stored, encrypted, with the scan).
        read: Returns the file's content; an ``OSError`` fails this file only.
    """

    name: str
    read: Callable[[], bytes]


@dataclass(frozen=True)
class ImportedScan:
    """What became of one imported file.

    Attributes:
        filename: The file's name.
        scan_id: The stored scan, ``None`` when the file could not be used.
        result: The stored result; ``None`` when the file failed or no model was available.
        error: Why the file could not be used (one sentence), ``None`` when it was stored.
    """

    filename: str
    scan_id: int | None = None
    result: ResultIn | None = None
    error: str | None = None

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
        saved = sum(item.ok for item in self.items)
        failed = len(self.items) - saved
        noun = "file was" if len(self.items) == 1 else "files were"
        sentence = f"{saved} of {len(self.items)} {noun} saved"
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


def classify(classifier: Classifier, scan: DecodedScan) -> ResultIn:
    """The model's result for one scan, ready to store; an abstention is a result too.

    Args:
        classifier: The loaded model.
        scan: The decoded scan.

    Returns:
        The result, with the model's name, version and checksum, and the thresholds of the
        patient's population: child or adult by the DICOM Patient's Age (0010,1010) where the
        file states it, else the unknown-age thresholds.
    """
    [prediction] = classifier.predict([scan], ages=[scan.metadata.patient_age])
    return ResultIn.from_prediction(prediction, classifier.info)


def save_decoded_scan(
    db: Database,
    actor: Actor,
    scan: DecodedScan,
    *,
    scan_date: date,
    filename: str,
    result: ResultIn | None,
    enhancement: EnhanceSettings | None = None,
) -> int:
    """Store a decoded scan in the patient's own record, with its display settings and result.

    Args:
        db: Database handle.
        actor: The patient.
        scan: The decoded file.
        scan_date: The date the X-ray was taken.
        filename: The file's name.
        result: Output of :func:`classify`, or ``None`` when no model was available.
        enhancement: How the patient chose to display the image (defaults when ``None``).

    Returns:
        The new scan's id.

    Raises:
        storage.policy.AccessDenied: The actor is not an active patient.
    """
    return save_scan(
        db,
        actor,
        pixels=scan.pixels,
        metadata=scan.metadata.to_dict(),
        enhancement=(enhancement or EnhanceSettings()).to_dict(),
        scan_date=scan_date,
        filename=filename,
        result=result,
    )


def import_scans(
    db: Database,
    actor: Actor,
    files: Sequence[ScanFile],
    classifier: Classifier | None,
    *,
    scan_date: date | None = None,
    fallback_date: date | None = None,
    on_progress: ImportProgress | None = None,
) -> ImportReport:
    """Decode, classify (or abstain) and store each file; an unusable file never stops the rest.

    Args:
        db: Database handle.
        actor: The patient who owns the scans.
        files: The files, in order.
        classifier: The loaded model, or ``None`` to store the scans without a result.
        scan_date: The date of every file, whatever the files say (the command line's
            ``--date``).
        fallback_date: The date of files without a usable date of their own (see
            :func:`usable_study_date`); ignored when ``scan_date`` is given.
        on_progress: Called after each file with the count done, the total and its outcome.

    Returns:
        One outcome per file, in order. A file fails with its one-sentence reason when it
        cannot be read or decoded, has no date, or may not be stored for ``actor``.

    Raises:
        Exception: Anything else (a fault of the app, not of a file) propagates.
    """
    outcomes: list[ImportedScan] = []
    for done, file in enumerate(files, start=1):
        try:
            data = file.read()
        except OSError as err:  # a path given on the command line; the OS names what failed
            outcome = ImportedScan(file.name, error=str(err))
        else:
            try:
                outcome = _import_one(
                    db, actor, file.name, data, classifier, scan_date, fallback_date
                )
            except UserError as err:
                outcome = ImportedScan(file.name, error=str(err))
        outcomes.append(outcome)
        if on_progress is not None:
            on_progress(done, len(files), outcome)
    return ImportReport(tuple(outcomes))


def _import_one(
    db: Database,
    actor: Actor,
    name: str,
    data: bytes,
    classifier: Classifier | None,
    scan_date: date | None,
    fallback_date: date | None,
) -> ImportedScan:
    scan = decode_scan(data, name, max_bytes=db.settings.max_upload_bytes)
    when = scan_date or usable_study_date(scan) or fallback_date
    if when is None:
        raise MissingScanDate()
    result = classify(classifier, scan) if classifier is not None else None
    scan_id = save_decoded_scan(db, actor, scan, scan_date=when, filename=name, result=result)
    return ImportedScan(name, scan_id, result)
