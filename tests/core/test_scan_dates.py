"""Tests for core.scan_dates: the date a file suggests, from DICOM, EXIF or its name."""

from __future__ import annotations

import io
from datetime import date

import numpy as np
from PIL import Image

from core.scan_dates import date_in_filename, exif_date, suggested_date

TODAY = date(2026, 11, 22)


def _jpeg(exif_text: str | None) -> bytes:
    image = Image.fromarray(np.full((64, 64), 128, dtype=np.uint8))
    exif = Image.Exif()
    if exif_text is not None:
        exif.get_ifd(0x8769)[0x9003] = exif_text
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def test_dates_in_file_names() -> None:
    assert date_in_filename("chest 2026-01-05 PA.png", TODAY) == date(2026, 1, 5)
    assert date_in_filename("IMG_20260107.jpg", TODAY) == date(2026, 1, 7)
    assert date_in_filename("scan_2026_01_09.dcm", TODAY) == date(2026, 1, 9)
    # NIH and Kermany names, impossible dates, future dates and mixed separators are no date.
    for name in (
        "00000001_000.png",
        "person1_bacteria_1.jpeg",
        "2026-13-40.png",
        "2027-01-01.png",
        "2026-01_05.png",
        "1901-01-01.png",
    ):
        assert date_in_filename(name, TODAY) is None, name


def test_exif_date_taken() -> None:
    assert exif_date(_jpeg("2026:01:05 09:30:00"), TODAY) == date(2026, 1, 5)
    assert exif_date(_jpeg(None), TODAY) is None
    assert exif_date(_jpeg("not a date"), TODAY) is None
    assert exif_date(b"DICM not an image", TODAY) is None


def test_suggestion_order_dicom_then_exif_then_name() -> None:
    data = _jpeg("2026:01:06 09:30:00")
    found = suggested_date(date(2026, 1, 5), data, "x_2026-01-07.jpg", TODAY)
    assert found is not None and (found.day, found.source) == (
        date(2026, 1, 5),
        "from the DICOM Study Date",
    )
    found = suggested_date(None, data, "x_2026-01-07.jpg", TODAY)
    assert found is not None and found.day == date(2026, 1, 6)
    found = suggested_date(date(1901, 1, 1), _jpeg(None), "x_2026-01-07.jpg", TODAY)
    assert found is not None and found.source == "from the file name"
    assert suggested_date(None, _jpeg(None), "film.jpg", TODAY) is None
