"""The date an X-ray was taken, as a file suggests it: DICOM Study Date, EXIF, or its name.

A suggestion only: the uploader sees it in the series table and can change it; a file that
suggests nothing gets an empty date, never today's.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime

from PIL import Image

#: Anonymisation tools often write dates like 1901-01-01; no digital radiograph is that old.
EARLIEST_PLAUSIBLE_YEAR = 1950

#: ``2026-01-05``, ``2026_01_05``, ``2026.01.05`` or ``20260105``, not inside a longer number.
_NAME_DATE = re.compile(r"(?<!\d)(\d{4})([-_.]?)(\d{2})\2(\d{2})(?!\d)")
#: EXIF DateTimeOriginal (in the Exif sub-IFD) and DateTime (in the main IFD).
_EXIF_IFD, _DATE_TIME_ORIGINAL, _DATE_TIME = 0x8769, 0x9003, 0x0132


@dataclass(frozen=True)
class FileDate:
    """A suggested date and where it came from.

    Attributes:
        day: The date.
        source: In words, e.g. ``"from the file name"``.
    """

    day: date
    source: str


def plausible(day: date | None, today: date) -> date | None:
    """``day`` when a radiograph can have been taken then (not a placeholder, not future)."""
    if day is None or day.year < EARLIEST_PLAUSIBLE_YEAR or day > today:
        return None
    return day


def date_in_filename(name: str, today: date) -> date | None:
    """The first plausible date written in a file name.

    Args:
        name: The file's name, e.g. ``"chest 2026-01-05 PA.png"`` or ``"IMG_20260105.jpg"``.
        today: Today's date (later dates are not taken).

    Returns:
        The date, or None.
    """
    for match in _NAME_DATE.finditer(name):
        year, _, month, day = match.groups()
        try:
            found = date(int(year), int(month), int(day))
        except ValueError:
            continue
        if plausible(found, today) is not None:
            return found
    return None


def exif_date(data: bytes, today: date) -> date | None:
    """The EXIF date a PNG or JPEG was taken (DateTimeOriginal, else DateTime).

    Args:
        data: The file's bytes, already accepted by ``core.imaging.decode_scan``.
        today: Today's date.

    Returns:
        The plausible date, or None when the file carries none (or unreadable EXIF).
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            exif = image.getexif()
            text = exif.get_ifd(_EXIF_IFD).get(_DATE_TIME_ORIGINAL) or exif.get(_DATE_TIME)
        found = datetime.strptime(str(text).strip()[:19], "%Y:%m:%d %H:%M:%S").date()
    except Exception:  # EXIF is optional and often malformed; no date is the answer.
        return None
    return plausible(found, today)


def suggested_date(study_date: date | None, data: bytes, name: str, today: date) -> FileDate | None:
    """The date a file suggests: DICOM Study Date, else EXIF, else a date in its name.

    Args:
        study_date: The DICOM Study Date, or None.
        data: The file's bytes.
        name: The file's name.
        today: Today's date.

    Returns:
        The first plausible suggestion with its source, or None.
    """
    if (day := plausible(study_date, today)) is not None:
        return FileDate(day, "from the DICOM Study Date")
    if (day := exif_date(data, today)) is not None:
        return FileDate(day, "from the picture's EXIF date")
    if (day := date_in_filename(name, today)) is not None:
        return FileDate(day, "from the file name")
    return None
