"""A real patient's series with two frontal projections and a side view, through the services.

The shared data holds no real lateral film, so the side view here is the real CR film of the
samples with its View Position (0018,5101) rewritten to LL: a real header path, real pixels,
but not a real lateral image.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from pathlib import Path

import pydicom
import pytest

from core.compare import compare_readings
from core.scan_reading import ScanStatus
from core.timeline import scans_needing_rescore, timeline_frame
from core.views import NOT_SCORED_SENTENCE, UNKNOWN_NOT_SCORED_SENTENCE, View
from services.imports import MissingScanView, ScanFile, import_scans
from services.records import read_patient, timeline_of
from services.rescore import rescore_scans
from storage.scans import list_scans

DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
JPEG = "16747_3_1.jpg"
PNG_1 = "00000001_000.png"
PNG_2 = "00027426_000.png"


def _dicom(samples_dir: Path, **tags: object) -> bytes:
    dataset = pydicom.dcmread(samples_dir / DICOM)
    for keyword, value in tags.items():
        setattr(dataset, keyword, value)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _real(samples_dir: Path, name: str, view: View | None) -> ScanFile:
    return ScanFile(name, (samples_dir / name).read_bytes, view)


class _NextModel:
    """The shipped model under a newer version number, to make every scan need re-scoring."""

    def __init__(self, classifier) -> None:
        self._classifier = classifier
        self.info = replace(classifier.info, version="next")

    def predict(self, scans, **options):
        return self._classifier.predict(scans, **options)


@pytest.fixture
def series(database, make_user, classifier, samples_dir: Path):
    """Alice's five films over three days: PA + lateral, PA + AP, PA."""
    alice = make_user("alice")
    lateral = _dicom(samples_dir, ViewPosition="LL")
    ap = _dicom(samples_dir, ViewPosition="AP")
    days = [
        (
            date(2026, 1, 5),
            [_real(samples_dir, JPEG, View.PA), ScanFile("side.dcm", lambda: lateral, None)],
        ),
        (
            date(2026, 1, 9),
            [_real(samples_dir, PNG_1, View.PA), ScanFile("ap.dcm", lambda: ap, None)],
        ),
        (date(2026, 1, 14), [_real(samples_dir, PNG_2, View.PA)]),
    ]
    items = []
    for day, files in days:
        report = import_scans(database, alice, files, classifier, scan_date=day)
        assert report.all_ok, [item.error for item in report.items]
        items.extend(report.items)
    return alice, items


def test_views_come_from_the_uploader_or_the_header_and_only_frontal_films_are_scored(
    database, series
) -> None:
    alice, items = series
    assert [item.view for item in items] == [View.PA, View.LATERAL, View.PA, View.AP, View.PA]
    side = items[1]
    assert side.result is None and NOT_SCORED_SENTENCE in side.notes
    assert all(item.result is not None for item in items if item is not side)
    assert side.reading is not None and side.reading.status is ScanStatus.NOT_SCORED_VIEW
    assert side.reading.findings == () and side.reading.headline == NOT_SCORED_SENTENCE
    scans = list_scans(database, alice, alice.user_id)
    by_id = {scan.id: scan for scan in scans}
    assert by_id[side.scan_id].view is View.LATERAL and by_id[side.scan_id].results == []
    record = read_patient(database, alice, alice.user_id, None)
    assert side.scan_id not in set(timeline_frame(record.readings)["scan_id"])
    timeline = timeline_of(record)
    assert any(NOT_SCORED_SENTENCE in sentence for sentence in timeline.unplotted)


def test_rescoring_skips_the_side_view(database, classifier, series) -> None:
    alice, items = series
    scans = list_scans(database, alice, alice.user_id)
    side = items[1].scan_id
    assert side not in scans_needing_rescore(scans, "next")
    model = _NextModel(classifier)
    before = read_patient(database, alice, alice.user_id, model)
    assert [r.status for r in before.readings].count(ScanStatus.AWAITING_RESCORE) == 4
    assert timeline_of(before).pending_rescore == tuple(
        item.scan_id for item in items if item.scan_id != side
    )

    outcome = rescore_scans(database, alice, scans, model)

    assert outcome.rescored == 4
    after_record = read_patient(database, alice, alice.user_id, model)
    assert [r.model_version for r in after_record.readings].count("next") == 4
    assert ScanStatus.AWAITING_RESCORE not in {r.status for r in after_record.readings}
    after = {scan.id: scan for scan in list_scans(database, alice, alice.user_id)}
    assert after[side].results == []
    assert all(len(scan.results) == 2 for scan_id, scan in after.items() if scan_id != side)


def test_flags_and_compare_stay_within_one_projection(database, classifier, series) -> None:
    alice, items = series
    record = read_patient(database, alice, alice.user_id, classifier, margin=0.01)
    pa_ids = [item.scan_id for item in items if item.view is View.PA]
    # Compare opens on the latest two PA films, never on the same day's side view.
    assert record.compare_default == (pa_ids[1], pa_ids[2])
    by_id = {reading.scan_id: reading for reading in record.readings}
    same_day = compare_readings(by_id[items[0].scan_id], by_id[items[1].scan_id])
    assert same_day.view_warning is not None and "Side (lateral)" in same_day.view_warning
    assert not same_day.comparable
    mixed = compare_readings(by_id[items[2].scan_id], by_id[items[3].scan_id])
    assert mixed.view_warning is not None and "different projections" in mixed.view_warning
    for reading in record.readings:
        for reason in reading.flags:
            if " rose " in reason:
                # Only a PA film after an earlier day's PA film can rise.
                assert reading.view is View.PA and "since the PA film of" in reason
                assert reading.scan_date != date(2026, 1, 5)
    # Every item's reading at import is the record's reading (flags aside: other margin).
    at_import = {item.scan_id: item.reading for item in items}
    again = read_patient(database, alice, alice.user_id, classifier)
    assert all(at_import[r.scan_id] == r for r in again.readings)


def test_a_png_needs_a_view_and_unknown_is_stored_unscored(
    database, make_user, classifier, samples_dir: Path
) -> None:
    alice = make_user("alice")
    when = date(2026, 2, 1)
    [refused] = import_scans(
        database, alice, [_real(samples_dir, PNG_1, None)], classifier, scan_date=when
    ).items
    assert refused.error == str(MissingScanView()) and refused.error_code == "missing_scan_view"
    assert list_scans(database, alice, alice.user_id) == []

    [unknown] = import_scans(
        database, alice, [_real(samples_dir, PNG_1, View.UNKNOWN)], classifier, scan_date=when
    ).items
    assert unknown.ok and unknown.result is None
    assert UNKNOWN_NOT_SCORED_SENTENCE in unknown.notes
    assert unknown.reading is not None and unknown.reading.headline == UNKNOWN_NOT_SCORED_SENTENCE


def test_the_uploader_overrides_the_header_with_a_note(
    database, make_user, classifier, samples_dir: Path
) -> None:
    alice = make_user("alice")
    frontal_only = _dicom(samples_dir, ViewPosition="", PatientOrientation=["L", "F"])
    files = [
        ScanFile("pa-says-header.dcm", (samples_dir / DICOM).read_bytes, View.LATERAL),
        ScanFile("orientation-only.dcm", lambda: frontal_only, None),
        ScanFile("orientation-chosen.dcm", lambda: frontal_only, View.AP),
    ]
    overridden, undecided, chosen = import_scans(
        database, alice, files, classifier, scan_date=date(2026, 2, 1)
    ).items
    assert overridden.view is View.LATERAL and overridden.result is None
    assert 'The file says its view is "Frontal (PA, standing)"' in overridden.notes[0]
    assert undecided.error_code == "missing_scan_view"
    assert chosen.view is View.AP and chosen.result is not None
