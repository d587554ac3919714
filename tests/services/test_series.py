"""Tests for entering a series: checking files, saving once (idempotent), ages and greying.

Real files from ../shared/data: an adult NIH film (labels.csv: age 68) and a Kermany film of
a child aged 1-5, read by the shipped model.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.imaging import decode_scan
from core.scan_reading import ScanStatus
from core.view_check import LOOKS_LATERAL_WARNING
from core.views import View
from services.imports import NotAChestRadiograph, ScanFile, import_scans
from services.series import (
    CONFIRM_VIEW_SENTENCE,
    check_files,
    preview,
    row_problem,
    series_problems,
    view_doubts,
)
from services.validity import reading_for
from storage.profile import set_birth_year
from storage.scans import list_scans

REAL_DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
NIH_ADULT = "nih_adult/test/Pneumonia/00000415_001.jpeg"  # labels.csv: age 68, AP
KERMANY_CHILD = "kermany/test/PNEUMONIA/person100_bacteria_475.jpeg"
TODAY = date(2026, 11, 22)


def _file(path: Path, view: View | None, when: date | None = None, name: str | None = None):
    return ScanFile(name or path.name, path.read_bytes, view, scan_date=when)


def test_saving_the_same_series_twice_stores_it_once(
    database, make_user, classifier, samples_dir: Path
) -> None:
    """A double click on Save: the second call stores nothing and names what is there."""
    alice = make_user("alice")
    files = [
        _file(samples_dir / "00000001_000.png", View.PA, date(2026, 1, 5)),
        _file(samples_dir / REAL_DICOM, None, date(2026, 1, 7)),
    ]
    first = import_scans(database, alice, files, classifier)
    assert first.summary == "2 of 2 files were saved."
    again = import_scans(database, alice, files, classifier)
    assert [item.already_saved for item in again.items] == [True, True]
    assert again.summary == "0 of 2 files were saved; 2 were already in your record."
    assert again.items[0].notes[0].startswith("Already in your record: the X-ray of 5 Jan 2026, ")
    assert [i.scan_id for i in again.items] == [i.scan_id for i in first.items]
    stored = list_scans(database, alice, alice.user_id)
    assert [(s.scan_date, s.view) for s in stored] == [
        (date(2026, 1, 5), View.PA),
        (date(2026, 1, 7), View.PA),
    ]


def test_the_same_file_renamed_is_still_recognised(database, make_user, samples_dir) -> None:
    alice = make_user("alice")
    png = samples_dir / "00000001_000.png"
    import_scans(database, alice, [_file(png, View.PA, date(2026, 1, 5))], None)
    again = import_scans(
        database, alice, [_file(png, View.AP, date(2026, 2, 1), name="renamed.png")], None
    )
    assert again.items[0].already_saved
    assert len(list_scans(database, alice, alice.user_id)) == 1


def test_check_files_fills_the_rows(database, make_user, samples_dir: Path) -> None:
    alice = make_user("alice")
    png = (samples_dir / "00000001_000.png").read_bytes()
    import_scans(
        database,
        alice,
        [ScanFile("old.png", lambda: png, View.PA, scan_date=date(2026, 1, 2))],
        None,
    )
    checked = check_files(
        database,
        alice,
        [
            ("chest_2026-01-05.png", (samples_dir / "00027426_000.png").read_bytes()),
            ("notes.png", b"just text"),
            ("real.dcm", (samples_dir / REAL_DICOM).read_bytes()),
            ("again.png", png),
            ("copy.png", (samples_dir / "00027426_000.png").read_bytes()),
        ],
        TODAY,
    )
    named, bad, dicom, again, copy = checked
    assert copy.same_as == "chest_2026-01-05.png" and not copy.to_save
    assert named.suggested is not None and named.suggested.day == date(2026, 1, 5)
    assert named.header_view is None and named.thumbnail.startswith("data:image/png;base64,")
    assert bad.error and bad.scan is None and not bad.to_save
    # The sample DICOM's Study Date is an anonymisation placeholder (1901): no date.
    assert dicom.suggested is None and dicom.header_view is View.PA
    assert again.saved is not None and again.saved.scan_date == date(2026, 1, 2)
    assert not again.to_save

    problems = series_problems(checked, {0: date(2026, 1, 5)}, {0: View.LATERAL}, TODAY)
    assert problems == {2: "Enter the date the X-ray was taken and its view."}


def test_row_problems() -> None:
    assert row_problem(date(2026, 1, 5), View.UNKNOWN, TODAY) is None
    assert row_problem(None, View.PA, TODAY) == "Enter the date the X-ray was taken."
    assert row_problem(date(2026, 1, 5), None, TODAY) == "Enter its view."
    assert "future" in (row_problem(date(2027, 1, 1), View.PA, TODAY) or "")
    assert "before 1950" in (row_problem(date(1901, 1, 1), View.PA, TODAY) or "")


@pytest.mark.parametrize(
    ("path", "birth_year", "population", "greyed", "kept"),
    [
        (NIH_ADULT, 1958, "adult", {"bacterial_pneumonia", "viral_pneumonia"}, "covid19"),
        (KERMANY_CHILD, 2022, "child", {"covid19"}, "bacterial_pneumonia"),
    ],
)
def test_real_films_are_read_for_the_patients_age(
    database, make_user, classifier, shared_data: Path, path, birth_year, population, greyed, kept
) -> None:
    """The age comes from the birth year at the scan's date (JPEGs state none)."""
    alice = make_user("alice")
    set_birth_year(database, alice, birth_year)
    report = import_scans(
        database, alice, [_file(shared_data / path, View.AP, date(2026, 1, 5))], classifier
    )
    (item,) = report.items
    assert item.ok and item.result is not None and not item.result.abstained
    assert item.result.population == population
    reading = reading_for(item.result, scan_date=date(2026, 1, 5), birth_year=birth_year)
    assert reading is not None
    assert greyed <= reading.excluded and kept not in reading.excluded
    for finding in reading.findings:
        if finding.finding in greyed:
            assert finding.note and "says little about" in finding.note


def _synthetic_side_view_png(samples_dir: Path) -> bytes:
    """SYNTHETIC stand-in for a side view (the shared samples hold no real lateral film): one
    half of a real frontal film stretched to full width, as ``tests/core/test_view_check.py``."""
    pixels = decode_scan((samples_dir / "00000001_000.png").read_bytes()).pixels
    half = pixels[:, : pixels.shape[1] // 2]
    stretched = np.repeat(half, 2, axis=1)[:, : pixels.shape[1]]
    out = io.BytesIO()
    Image.fromarray(np.round(stretched * 255).astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def test_a_doubtful_frontal_view_needs_confirming_and_is_then_read_as_view_uncertain(
    database, make_user, classifier, samples_dir: Path
) -> None:
    alice = make_user("alice")
    uploads = [
        ("side-as-pa.png", _synthetic_side_view_png(samples_dir)),
        ("frontal.png", (samples_dir / "00027426_000.png").read_bytes()),
    ]
    checked = check_files(database, alice, uploads, TODAY)
    when = {0: date(2026, 1, 5), 1: date(2026, 1, 5)}
    views = {0: View.PA, 1: View.PA}
    doubts = view_doubts(checked, views)
    assert list(doubts) == [0] and doubts[0] == LOOKS_LATERAL_WARNING
    # Saving waits for one explicit choice for that file only.
    assert series_problems(checked, when, views, TODAY) == {0: CONFIRM_VIEW_SENTENCE}
    assert series_problems(checked, when, views, TODAY, confirmed={0}) == {}
    # Choosing the side view instead settles it too: a side view is never doubted nor scored.
    assert series_problems(checked, when, {0: View.LATERAL, 1: View.PA}, TODAY) == {}
    side = preview(checked[0], View.LATERAL, when[0], None, classifier)
    assert side.reading.status is ScanStatus.NOT_SCORED_VIEW and side.scored.result is None
    assert side.reading.findings == ()

    shown = preview(checked[0], View.PA, when[0], None, classifier, view_confirmed=True)
    assert shown.scored.result is not None
    assert shown.reading.status in (ScanStatus.VIEW_UNCERTAIN, ScanStatus.UNSURE)
    if shown.reading.status is ScanStatus.VIEW_UNCERTAIN:
        assert shown.reading.headline.startswith("View uncertain.")
        assert not any(" rose " in flag for flag in shown.reading.flags)
    # The preview's result is reused without the model when the view and age still match.
    again = preview(checked[0], View.PA, when[0], None, None, shown.scored, view_confirmed=True)
    assert again.reading == shown.reading

    files = [
        ScanFile(
            file.name,
            lambda data=uploads[position][1]: data,  # decoded once, by the check
            views[position],
            scan_date=when[position],
            decoded=file.scan,
            scored=shown.scored if position == 0 else None,
        )
        for position, file in enumerate(checked)
    ]
    saved = import_scans(database, alice, files, classifier)
    assert saved.all_ok, [item.error for item in saved.items]
    doubtful, plain = saved.items
    assert doubtful.result == shown.scored.result
    assert doubtful.reading is not None and plain.reading is not None
    assert doubtful.reading.status is shown.reading.status
    assert doubtful.reading.value_of("pneumonia") == shown.reading.value_of("pneumonia")
    assert not doubtful.reading.comparable
    assert plain.reading.status in (ScanStatus.SCORED, ScanStatus.UNSURE)
    stored = {scan.id: scan for scan in list_scans(database, alice, alice.user_id)}
    assert stored[doubtful.scan_id].view_doubt == LOOKS_LATERAL_WARNING
    assert stored[plain.scan_id].view_doubt is None


def test_a_file_that_is_not_a_chest_radiograph_is_refused_before_a_date_or_view(
    database, make_user, classifier
) -> None:
    alice = make_user("alice")
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (600, 800, 3), dtype=np.uint8))
    out = io.BytesIO()
    photo.save(out, format="JPEG")
    (item,) = import_scans(
        database, alice, [ScanFile("holiday.jpg", out.getvalue, None)], classifier
    ).items
    assert not item.ok and item.error_code == NotAChestRadiograph.code
    assert item.reading is None
    assert list_scans(database, alice, alice.user_id) == []
