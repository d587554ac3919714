"""Building a scan's report (services.report) from stored records, on both backends."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from core.imaging import decode_scan
from core.report import HEATMAP_CAPTION
from core.scan_reading import ScanStatus
from core.views import View
from services.imports import classify, save_decoded_scan
from services.records import read_patient, timeline_of
from services.report import build_scan_report
from storage.actor import Actor
from storage.notes import add_note
from storage.profile import set_display_name
from storage.scans import save_scan
from storage.sharing import grant_access
from tests.storage._factories import sample_result

JPEG = "16747_3_1.jpg"


def _alice_sharing_with_dr_bob(database, make_user) -> tuple[Actor, Actor]:
    alice = make_user("alice")
    dr_bob = make_user("dr_bob", role="clinician")
    grant_access(database, alice, "dr_bob", hours=1)
    return alice, dr_bob


def _save_sample(
    database, owner: Actor, samples_dir: Path, when: date, view: View, result, filename=JPEG
) -> int:
    scan = decode_scan((samples_dir / JPEG).read_bytes(), JPEG)
    return save_decoded_scan(
        database, owner, scan, scan_date=when, filename=filename, view=view, result=result
    )


def test_report_of_a_real_scan_with_its_previous_scan_heatmap_and_note(
    database, make_user, classifier, samples_dir: Path
) -> None:
    alice, dr_bob = _alice_sharing_with_dr_bob(database, make_user)
    earlier = _save_sample(
        database,
        alice,
        samples_dir,
        date(2025, 1, 1),
        View.PA,
        sample_result(0.1, classifier.info.version),
        filename="earlier.jpg",
    )
    scan = decode_scan((samples_dir / JPEG).read_bytes(), JPEG)
    later = _save_sample(
        database, alice, samples_dir, date(2025, 2, 1), View.PA, classify(classifier, scan)
    )
    add_note(database, dr_bob, later, "Compare with the next scan.", {"x": 10, "y": 20})
    record = read_patient(database, alice, alice.user_id, classifier)

    plain = build_scan_report(database, alice, record, later, classifier)
    with_heat = build_scan_report(
        database, alice, record, later, classifier, heatmap_finding="covid19"
    )

    assert (plain.scan_id, plain.scan_date, plain.filename) == (later, date(2025, 2, 1), JPEG)
    assert plain.model_version == classifier.info.version
    flagged = {line.finding for line in plain.findings if line.above_threshold}
    assert flagged == {"pneumonia", "covid19"}
    assert all(line.endswith("since the scan of 1 Jan 2025.") for line in plain.changes)
    assert plain.changes
    assert plain.red_flags == record.reading(later).flags != ()
    assert plain.headline == record.reading(later).headline
    assert HEATMAP_CAPTION in with_heat.image_note and HEATMAP_CAPTION not in plain.image_note
    assert [(n.author, n.text) for n in plain.notes] == [("dr_bob", "Compare with the next scan.")]
    assert plain.image is not None and with_heat.image is not None
    assert not np.array_equal(plain.image, with_heat.image)
    first = build_scan_report(database, alice, record, earlier, classifier)
    assert first.changes == (), "the first scan has nothing to compare with"
    assert plain.view is View.PA and plain.patient_name == "alice", "no display name: username"
    assert {point.scan_id for point in plain.timeline} == {earlier, later}
    assert {point.scan_id for point in first.timeline} == {earlier}, "only up to this scan"
    # The report plots exactly what the Timeline plots by default, up to this scan.
    frame = timeline_of(record).figure
    assert frame is not None
    plotted = {(p.scan_id, p.finding, round(p.probability, 6)) for p in plain.timeline}
    assert plotted == {
        (r.scan_id, item.finding, round(item.value, 6))
        for r in record.readings
        for item in r.findings
        if item.plotted
    }


def test_the_report_carries_the_display_name_and_the_readers_time_zone(
    database, make_user, classifier, samples_dir: Path
) -> None:
    alice, dr_bob = _alice_sharing_with_dr_bob(database, make_user)
    scan_id = _save_sample(database, alice, samples_dir, date(2025, 2, 1), View.AP, None)
    record = read_patient(database, alice, alice.user_id, None)
    assert build_scan_report(database, dr_bob, record, scan_id, None).patient_name is None
    set_display_name(database, alice, "Alice Moreau")
    report = build_scan_report(database, alice, record, scan_id, None, zone="Asia/Tokyo")
    assert (report.patient_name, report.zone, report.view) == (
        "Alice Moreau",
        "Asia/Tokyo",
        View.AP,
    )
    assert build_scan_report(database, dr_bob, record, scan_id, None).patient_name == "Alice Moreau"
    # Saved without a model: no number, and the report says why.
    assert report.findings == () and report.status == "Awaiting re-score"


def test_a_side_view_report_has_no_number_even_with_an_old_result(
    database, make_user, samples_dir: Path
) -> None:
    alice = make_user("alice")
    scan_id = _save_sample(
        database, alice, samples_dir, date(2025, 2, 1), View.LATERAL, sample_result(0.9)
    )
    record = read_patient(database, alice, alice.user_id, None)
    assert record.reading(scan_id).status is ScanStatus.NOT_SCORED_VIEW
    report = build_scan_report(database, alice, record, scan_id, None)
    assert report.findings == () and report.red_flags == () and report.timeline == ()
    assert report.model_version is None
    assert "not scored" in report.summary[0]


def test_a_clinician_with_access_gets_the_same_report(database, make_user, samples_dir) -> None:
    alice, dr_bob = _alice_sharing_with_dr_bob(database, make_user)
    scan_id = _save_sample(database, alice, samples_dir, date(2025, 2, 1), View.PA, sample_result())
    mine = build_scan_report(
        database, alice, read_patient(database, alice, alice.user_id, None), scan_id, None
    )
    theirs = build_scan_report(
        database, dr_bob, read_patient(database, dr_bob, alice.user_id, None), scan_id, None
    )
    assert mine.summary == theirs.summary and mine.findings == theirs.findings
    assert mine.headline == theirs.headline and mine.findings


def test_a_stored_enhancement_that_no_longer_validates_shows_the_original_image(
    database, make_user
) -> None:
    alice = make_user("alice")
    pixels = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    scan_id = save_scan(
        database,
        alice,
        pixels=pixels,
        metadata={},
        scan_date=date(2025, 1, 1),
        enhancement={"gamma": 99.0},
        filename="odd.png",
        result=sample_result(),
    )
    report = build_scan_report(
        database, alice, read_patient(database, alice, alice.user_id, None), scan_id, None
    )
    assert report.image is not None
    shown = report.image[..., 0]
    assert np.abs(shown.astype(float) - np.round(pixels * 255)).max() <= 1
