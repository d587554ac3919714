"""Importing a patient's CD or download (a ZIP file, a DICOMDIR with its folder, a folder).

The upload page and ``python -m storage.cli import-scan`` both list the medium with
:func:`check_media` (studies, series, what is left out, and whether the headers' patient may be
someone else) and import the chosen series with :func:`import_media`, one file at a time
through the same path as every upload (:func:`services.imports.import_scans`): dates and views
from the headers, the same file never stored twice, each saved scan read as every page reads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, BinaryIO

from core.age import age_at
from core.dicom_media import MediaImage, MediaListing, MediaSeries, iter_images, list_media
from core.errors import UserError
from core.labels import format_day
from core.views import View
from core.words import plural
from services.imports import ImportProgress, ImportReport, ScanFile, import_scans
from storage.actor import Actor
from storage.db import Database
from storage.profile import get_birth_year

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from pathlib import Path

    from models.inference import Classifier

#: Years a header's age may differ from the one the account's birth year gives (a birthday
#: not yet reached in the study's year).
_AGE_SLACK = 1


class IdentityNotConfirmed(UserError):
    """The headers' patient may not be the account's, and the uploader did not confirm."""

    code = "identity_not_confirmed"
    default_message = (
        "These films may be of someone else: confirm that they are yours before importing them."
    )


@dataclass(frozen=True)
class MediaCheck:
    """A medium as listed for the patient, before anything is imported.

    Attributes:
        listing: Its studies and series, and what was left out (``core.dicom_media``).
        doubts: Sentences saying why the films may be of someone else (several Patient IDs,
            a birth date or age that disagrees with the account); empty when none.
        names: The patient names the headers give, shown to the uploader only to ask "is this
            you?"; never stored or logged.
    """

    listing: MediaListing
    doubts: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def needs_confirmation(self) -> bool:
        """Whether the uploader must say the films are theirs before importing."""
        return bool(self.doubts)


def identity_doubts(series: Sequence[MediaSeries], birth_year: int | None) -> tuple[str, ...]:
    """Why the films of ``series`` may be of someone other than the account's patient.

    Args:
        series: The series to import.
        birth_year: The account's birth year, or None (then only several Patient IDs count).

    Returns:
        One sentence per reason, in plain words; empty when nothing disagrees.
    """
    doubts = []
    ids = sorted({one.patient.patient_id for one in series if one.patient.patient_id})
    if len(ids) > 1:
        doubts.append(
            f"The files name {plural(len(ids), 'different patient')} "
            f"(Patient IDs {', '.join(ids)})."
        )
    if birth_year is not None:
        born = sorted(
            {one.patient.birth_date.year for one in series if one.patient.birth_date is not None}
        )
        if any(year != birth_year for year in born):
            doubts.append(
                f"The files say the patient was born in {', '.join(map(str, born))}; your "
                f"account says {birth_year}."
            )
        elif not born:
            for one in series:
                if one.patient.age is None or one.date is None:
                    continue
                expected = age_at(birth_year, one.date)
                if expected is not None and abs(one.patient.age - expected) > _AGE_SLACK:
                    doubts.append(
                        f"The files give the patient's age as {one.patient.age} on "
                        f"{format_day(one.date)}; by your account's birth year you were "
                        f"{expected}."
                    )
                    break
    return tuple(doubts)


def check_media(db: Database, actor: Actor, source: Path | BinaryIO) -> MediaCheck:
    """List a CD, ZIP or folder for the patient and say whether its films may be someone else's.

    Args:
        db: Database handle.
        actor: The patient.
        source: A folder, a DICOMDIR file, or a ZIP file (a path or an upload's buffer).

    Returns:
        The check.

    Raises:
        core.dicom_media.MediaError: The medium cannot be read or exceeds a limit.
        storage.policy.AccessDenied: The actor is not an active patient.
    """
    listing = list_media(source)
    birth_year = get_birth_year(db, actor, actor.user_id)
    names = tuple(
        sorted({one.patient.name for one in listing.series if one.patient.name is not None})
    )
    return MediaCheck(listing, identity_doubts(listing.series, birth_year), names)


def _file_of(image: MediaImage) -> ScanFile:
    # The header's view; a file that states none is kept as "not known" (never scored) and
    # its view can be set later, which re-reads it.
    name = PurePosixPath(image.instance.location).name
    return ScanFile(name, lambda: image.data, image.instance.view or View.UNKNOWN)


def import_media(
    db: Database,
    actor: Actor,
    source: Path | BinaryIO,
    chosen: Sequence[MediaSeries],
    classifier: Classifier | None,
    *,
    identity_confirmed: bool = False,
    on_progress: ImportProgress | None = None,
    fallback_date: date | None = None,
) -> ImportReport:
    """Import the chosen series of a listed medium, one file at a time.

    Args:
        db: Database handle.
        actor: The patient.
        source: The medium :func:`check_media` listed.
        chosen: The series to import, from its listing.
        classifier: The current model, or None.
        identity_confirmed: The patient confirmed the films are theirs (needed when the check
            has doubts about the chosen series).
        on_progress: Called after each file.
        fallback_date: The date of files whose headers give none.

    Returns:
        One outcome per file; files already in the record are not stored again.

    Raises:
        IdentityNotConfirmed: The chosen series raise a doubt and it was not confirmed.
        core.dicom_media.MediaError: The medium changed since it was listed.
    """
    birth_year = get_birth_year(db, actor, actor.user_id)
    if identity_doubts(chosen, birth_year) and not identity_confirmed:
        raise IdentityNotConfirmed()
    total = sum(one.image_count for one in chosen)

    def files() -> Iterator[ScanFile]:
        for image in iter_images(source, chosen):
            yield _file_of(image)

    return import_scans(
        db,
        actor,
        files(),
        classifier,
        total=total,
        fallback_date=fallback_date,
        on_progress=on_progress,
    )
