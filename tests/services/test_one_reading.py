"""One patient's series of real films, every surface: the same reading of each scan everywhere.

The series holds a scored PA film, a film scored only by an older model, a film the model was
unsure about, a side film, a film re-labelled lateral after saving, a doubtful-view film (a real
lateral) confirmed as PA, and a film whose header states a child's age. Upload, My scans,
Timeline, Report, the PDF's text and the command line's export must agree on each scan's status,
headline, values shown, flags and plotting.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from core.findings import FINDING_LABELS
from core.imaging import decode_scan
from core.labels import format_day
from core.report_pdf import report_to_pdf
from core.scan_reading import ScanReading, ScanStatus
from core.timeline import timeline_frame
from core.views import VIEW_LABELS, View
from services.export import export_records, reading_json
from services.imports import ScanFile, classify, import_scans, save_decoded_scan
from services.records import open_scan_view, read_patient, timeline_of
from services.report import build_scan_report
from services.rescore import change_scan_view
from storage.profile import set_birth_year
from tests.core._pdf import page_lines

SERIAL = "external/serial_adults"


def _file(path: Path, view: View, day: date) -> ScanFile:
    return ScanFile(path.name, path.read_bytes, view, scan_date=day)


def _saved(report, name: str) -> tuple[int, ScanReading]:
    [item] = [item for item in report.items if item.filename == name]
    assert item.ok and item.scan_id is not None and item.reading is not None, item
    return item.scan_id, item.reading


def _same(a: ScanReading, b: ScanReading) -> None:
    """Two readings of one scan tell the same story."""
    assert (a.status, a.headline, a.flags, a.plotted) == (b.status, b.headline, b.flags, b.plotted)
    assert [(f.finding, f.value, f.flagged, f.plotted) for f in a.findings] == [
        (f.finding, f.value, f.flagged, f.plotted) for f in b.findings
    ]


@pytest.fixture
def series(database, make_user, classifier, shared_data: Path):
    """The patient, their scans by role, and the readings the upload reported."""
    alice = make_user("alice", "patient")
    set_birth_year(database, alice, 1980)
    samples, serial = shared_data / "samples", shared_data / SERIAL
    uploads = {}
    files = {
        "scored": _file(samples / "16747_3_1.jpg", View.PA, date(2026, 1, 5)),
        "side": _file(serial / "p13_day04_5.png", View.LATERAL, date(2026, 1, 6)),
        "relabelled": _file(serial / "p13_day04_4.png", View.PA, date(2026, 1, 7)),
        "doubtful": _file(serial / "p13_day07_7.png", View.PA, date(2026, 1, 8)),
    }
    for role, file in files.items():
        uploads[role] = _saved(import_scans(database, alice, [file], classifier), file.name)
    ids = {role: scan_id for role, (scan_id, _) in uploads.items()}
    change_scan_view(database, alice, ids["relabelled"], View.LATERAL, classifier)

    film = decode_scan((samples / "00000001_000.png").read_bytes(), "old.png")
    current = classify(classifier, film, 46)
    older = replace(current, model_version="0.9.0", checkpoint_sha256="0" * 64)
    unsure = replace(current, abstained=True, abstain_reason="This image looks odd.")
    child = classify(classifier, film, 4)
    for role, result, day in (
        ("older", older, date(2026, 1, 9)),
        ("unsure", unsure, date(2026, 1, 10)),
        ("child", child, date(2026, 1, 11)),
    ):
        ids[role] = save_decoded_scan(
            database,
            alice,
            film,
            scan_date=day,
            filename=f"{role}.png",
            view=View.PA,
            result=result,
        )
    return alice, ids, uploads


@pytest.mark.slow
def test_every_surface_tells_each_film_the_same_story(database, classifier, series) -> None:
    alice, ids, uploads = series
    record = read_patient(database, alice, alice.user_id, classifier)
    readings = {role: record.reading(scan_id) for role, scan_id in ids.items()}

    # The statuses the rules give each film.
    assert readings["scored"].status is ScanStatus.SCORED
    assert readings["older"].status is ScanStatus.AWAITING_RESCORE
    assert readings["unsure"].status is ScanStatus.UNSURE
    assert readings["side"].status is ScanStatus.NOT_SCORED_VIEW
    assert readings["relabelled"].status is ScanStatus.NOT_SCORED_VIEW
    assert readings["doubtful"].status is ScanStatus.VIEW_UNCERTAIN
    assert readings["child"].population == "child"
    assert any(item.greyed for item in readings["child"].findings)
    for role in ("older", "unsure", "side", "relabelled"):
        assert not readings[role].has_numbers and not readings[role].plotted, role
    assert "strongest" not in " ".join(r.headline for r in readings.values())

    # Upload: what the save reported, for films whose reading nothing changed since.
    for role in ("scored", "side", "doubtful"):
        _same(uploads[role][1], readings[role])

    timeline = timeline_of(record)
    plotted = set(timeline_frame(record.readings)["scan_id"])
    assert plotted == {r.scan_id for r in record.readings if r.plotted}
    exported = {
        scan["id"]: scan["reading"] for scan in export_records(database, alice, classifier)["scans"]
    }
    rows = {(row["Scan date"], row["View"]): row for row in timeline.table.to_dict("records")}
    for role, scan_id in ids.items():
        reading = readings[role]
        # My scans.
        _same(open_scan_view(database, alice, record, scan_id).reading, reading)
        # Timeline: status, values shown, plotted.
        row = rows[(format_day(reading.scan_date), VIEW_LABELS[reading.view])]
        assert row["Status"] == reading.status_words
        assert row["Needs attention"] == " ".join(reading.flags)
        for item in reading.findings:
            assert row[item.label].startswith(f"{item.value:.0%}")
        if not reading.has_numbers:
            assert all(row[label] == "" for label in FINDING_LABELS.values())
        # Report and its PDF.
        report = build_scan_report(database, alice, record, scan_id, classifier)
        assert report.headline == reading.headline
        assert report.red_flags == reading.flags
        assert [(f.finding, f.probability, f.above_threshold) for f in report.findings] == [
            (f.finding, f.value, f.flagged) for f in reading.findings
        ]
        # The report's chart plots what the Timeline plots by default, up to this film.
        assert {point.scan_id for point in report.timeline} == {
            r.scan_id
            for r in record.readings
            if r.plotted and (r.scan_date, r.scan_id) <= (reading.scan_date, scan_id)
        }
        text = " ".join(" ".join(page) for page in page_lines(report_to_pdf(report)))
        if reading.has_numbers:
            for item in reading.findings:
                assert f"{item.label}: {item.value:.0%}" in text
        else:
            assert "Scores" not in text
        # Export.
        assert exported[scan_id] == reading_json(reading)
