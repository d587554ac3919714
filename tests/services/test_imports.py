"""Importing scans (services.imports) with real files and the shipped model, on both backends."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from core.imaging import UnsupportedFormat, decode_scan
from core.views import View
from services.imports import (
    EARLIEST_PLAUSIBLE_YEAR,
    ImportedScan,
    ImportReport,
    MissingScanDate,
    ScanFile,
    classify,
    import_scans,
    save_decoded_scan,
    usable_study_date,
)
from storage.policy import AccessDenied
from storage.scans import NoOriginalKept, list_scans, load_original, load_scan

PNG = "00000001_000.png"
JPEG = "16747_3_1.jpg"
#: A real DICOM whose Study Date is an anonymisation placeholder (1901-01-01).
DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
#: A DICOM stored as a negative: the model refuses it.
NEGATIVE = "Fake_MONOHR1.dcm"


def _file(samples_dir: Path, name: str) -> ScanFile:
    return ScanFile(name, (samples_dir / name).read_bytes, View.PA)


def test_a_batch_stores_each_usable_file_and_reports_the_rest(
    database, make_user, classifier, samples_dir: Path
) -> None:
    alice = make_user("alice")
    files = [
        _file(samples_dir, PNG),
        ScanFile("notes.png", lambda: b"not an image", View.PA),
        _file(samples_dir, DICOM),
        _file(samples_dir, NEGATIVE),
    ]
    progress: list[tuple[int, int, str]] = []

    report = import_scans(
        database,
        alice,
        files,
        classifier,
        fallback_date=date(2026, 6, 1),
        on_progress=lambda done, total, outcome: progress.append((done, total, outcome.filename)),
    )

    assert [item.filename for item in report.items] == [PNG, "notes.png", DICOM, NEGATIVE]
    assert [item.ok for item in report.items] == [True, False, True, True]
    assert report.items[1].error == UnsupportedFormat.default_message
    assert report.items[1].scan_id is None and report.items[1].result is None
    assert progress == [(1, 4, PNG), (2, 4, "notes.png"), (3, 4, DICOM), (4, 4, NEGATIVE)]
    assert report.summary == "3 of 4 files were saved; 1 could not be used."
    assert not report.all_ok

    stored = {scan.id: scan for scan in list_scans(database, alice, alice.user_id)}
    assert sorted(stored) == sorted(item.scan_id for item in report.items if item.ok)
    for item in report.items:
        if not item.ok:
            continue
        scan = stored[item.scan_id]
        assert scan.filename == item.filename
        # Neither file carries a usable date of its own (the DICOM's is a placeholder).
        assert scan.scan_date == date(2026, 6, 1)
        (result,) = scan.results
        assert result.probabilities == item.result.probabilities
        assert result.model_version == classifier.info.version
        assert result.thresholds == item.result.thresholds
    negative = report.items[3].result
    assert negative.abstained and "negative" in negative.abstain_reason
    record = load_scan(database, alice, report.items[2].scan_id)
    assert record.metadata["source_format"] == "dicom" and record.enhancement


def test_the_stored_result_is_the_model_result_of_the_decoded_file(
    database, make_user, classifier, samples_dir: Path
) -> None:
    alice = make_user("alice")
    (item,) = import_scans(
        database, alice, [_file(samples_dir, JPEG)], classifier, scan_date=date(2025, 1, 2)
    ).items
    expected = classify(classifier, decode_scan((samples_dir / JPEG).read_bytes(), JPEG))
    assert item.result == expected
    assert not expected.abstained


def test_the_dicom_patients_age_picks_the_adult_thresholds(
    database, make_user, classifier, samples_dir: Path
) -> None:
    """The CR sample states Patient's Age 062Y; the JPEG states no age."""
    alice = make_user("alice")
    dicom, jpeg = import_scans(
        database,
        alice,
        [_file(samples_dir, DICOM), _file(samples_dir, JPEG)],
        classifier,
        scan_date=date(2025, 1, 2),
    ).items
    assert dicom.result is not None and jpeg.result is not None
    assert (dicom.result.population, jpeg.result.population) == ("adult", "unknown")
    assert dicom.result.thresholds == classifier.thresholds_for(62)
    assert jpeg.result.thresholds == classifier.thresholds_for(None)
    assert dicom.result.thresholds != jpeg.result.thresholds


def test_a_given_date_wins_over_the_file_and_a_missing_date_fails_the_file(
    database, make_user, samples_dir: Path
) -> None:
    alice = make_user("alice")
    files = [_file(samples_dir, PNG)]
    (undated,) = import_scans(database, alice, files, None).items
    assert undated.error == MissingScanDate.default_message
    (dated,) = import_scans(
        database, alice, files, None, scan_date=date(2024, 5, 6), fallback_date=date(2026, 1, 1)
    ).items
    assert dated.ok and dated.result is None, "no model: stored without a result"
    (scan,) = list_scans(database, alice, alice.user_id)
    assert scan.scan_date == date(2024, 5, 6) and scan.results == []


def test_an_unreadable_file_fails_alone(database, make_user, samples_dir: Path, tmp_path) -> None:
    alice = make_user("alice")
    missing = tmp_path / "gone.png"
    report = import_scans(
        database,
        alice,
        [ScanFile("gone.png", missing.read_bytes, View.PA), _file(samples_dir, PNG)],
        None,
        scan_date=date(2024, 5, 6),
    )
    assert [item.ok for item in report.items] == [False, True]
    assert "No such file" in report.items[0].error


def test_only_patients_store_scans_and_each_file_says_so(
    database, make_user, samples_dir: Path
) -> None:
    dr_bob = make_user("dr_bob", role="clinician")
    scan = decode_scan((samples_dir / PNG).read_bytes(), PNG)
    with pytest.raises(AccessDenied) as denied:
        save_decoded_scan(
            database,
            dr_bob,
            scan,
            scan_date=date(2024, 5, 6),
            filename=PNG,
            view=View.PA,
            result=None,
        )
    report = import_scans(
        database, dr_bob, [_file(samples_dir, PNG)] * 2, None, scan_date=date(2024, 5, 6)
    )
    assert [item.error for item in report.items] == [str(denied.value)] * 2


def test_a_fault_of_the_app_propagates(database, make_user, samples_dir: Path) -> None:
    class Broken:
        def predict(self, scans, **options):
            raise RuntimeError("bug")

    alice = make_user("alice")
    with pytest.raises(RuntimeError, match="bug"):
        import_scans(
            database, alice, [_file(samples_dir, PNG)], Broken(), scan_date=date(2024, 5, 6)
        )
    assert list_scans(database, alice, alice.user_id) == []


def test_summary_sentences() -> None:
    one_failed = ImportReport((ImportedScan("a.png", error="Bad."),))
    assert one_failed.summary == "0 of 1 file was saved; 1 could not be used."
    assert ImportReport(()).summary == "0 of 0 files were saved."
    assert ImportReport((ImportedScan("a.png", 1),)).summary == "1 of 1 file was saved."


def test_a_placeholder_study_date_is_not_used(samples_dir: Path) -> None:
    scan = decode_scan((samples_dir / DICOM).read_bytes(), DICOM)
    assert scan.metadata.study_date.year < EARLIEST_PLAUSIBLE_YEAR
    assert usable_study_date(scan) is None
    assert usable_study_date(decode_scan((samples_dir / PNG).read_bytes(), PNG)) is None
    dated = replace(scan, metadata=replace(scan.metadata, study_date=date(2020, 3, 4)))
    assert usable_study_date(dated) == date(2020, 3, 4)


def test_the_original_file_is_kept_only_when_asked(database, make_user, samples_dir: Path) -> None:
    alice = make_user("alice")
    kept, plain = (
        import_scans(
            database,
            alice,
            [_file(samples_dir, name)],
            None,
            scan_date=date(2026, 6, 1),
            keep_original=keep,
        ).items[0]
        for name, keep in ((PNG, True), (JPEG, False))
    )
    assert kept.scan_id is not None and plain.scan_id is not None
    original = load_original(database, alice, kept.scan_id)
    assert (original.filename, original.data) == (PNG, (samples_dir / PNG).read_bytes())
    with pytest.raises(NoOriginalKept):
        load_original(database, alice, plain.scan_id)
