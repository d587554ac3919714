"""Tests of the scan report: content, questions, image and PDF/JSON export."""

from __future__ import annotations

import json
import re
import zlib
from datetime import UTC, date, datetime

import numpy as np

from core.annotations import make_annotation
from core.enhance import ORIGINAL_CAPTION
from core.findings import DISCLAIMER, FINDING_LABELS
from core.reading import ADULT
from core.report import (
    GENERAL_QUESTIONS,
    ReportNote,
    build_report,
    previous_comparable,
    report_to_json,
)
from core.report_pdf import report_to_pdf
from core.scan_reading import ScanReading
from core.views import View
from core.words import in_sentence
from storage.scans import ScanSummary
from tests.core._records import VALIDITY, make_result, make_scan, probs, read

_WHEN = datetime(2026, 4, 2, 9, 30, tzinfo=UTC)


def _pdf_text(pdf: bytes) -> str:
    """Inflate every compressed stream of a PDF and join them with the raw bytes."""
    chunks = [pdf.decode("latin-1")]
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            chunks.append(zlib.decompress(match.group(1)).decode("latin-1"))
        except zlib.error:
            continue
    # Text operators escape parentheses inside their (string) operands.
    return "\n".join(chunks).replace("\\(", "(").replace("\\)", ")")


def _rising_pair() -> list[ScanReading]:
    previous = make_scan(1, date(2026, 3, 2), "march.png", results=[make_result(1, probs(0.12))])
    current = make_scan(
        2, date(2026, 4, 1), "april.png", results=[make_result(2, probs(0.41, bacterial=0.62))]
    )
    return read([previous, current])


def _rgb(side: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8)


def test_summary_says_what_was_checked_found_and_cannot_tell() -> None:
    history = _rising_pair()
    report = build_report(history[1], history=history, filename="april.png", generated_at=_WHEN)
    text = " ".join(report.summary)
    assert "1 Apr 2026, frontal (PA, standing)" in text and "april.png" not in text
    assert "cxr-densenet" not in text and report.model_words == "cxr-densenet v1"
    assert all(in_sentence(label) in text for label in FINDING_LABELS.values())
    assert "bacterial pneumonia 62%" in text
    assert "not a diagnosis" in text
    assert any("only this image" in line for line in report.limitations)
    assert report.disclaimer == DISCLAIMER
    assert set(report.glossary) == set(FINDING_LABELS.values())
    assert [f.above_threshold for f in report.findings] == [False, True, False, False]
    assert (report.status, report.headline) == ("Scored", history[1].headline)
    assert report.red_flags == history[1].flags


def test_questions_are_triggered_by_a_rising_finding_and_a_high_score() -> None:
    history = _rising_pair()
    report = build_report(history[1], history=history, generated_at=_WHEN)
    assert any(
        "pneumonia score rose from 12% to 41% since 2 Mar 2026" in q for q in report.questions
    )
    assert any(
        q.startswith("The model scored bacterial pneumonia at 62%") for q in report.questions
    )
    assert "Pneumonia: higher (12% to 41%) since the scan of 2 Mar 2026." in report.changes
    assert report.questions[-2:] == GENERAL_QUESTIONS


def test_without_a_previous_scan_there_is_no_change_and_a_fall_asks_about_recovery() -> None:
    history = _rising_pair()
    alone = build_report(history[1], generated_at=_WHEN)
    assert not any("rose" in q for q in alone.questions)
    assert alone.changes == ()
    scans = [
        make_scan(2, date(2026, 4, 1), results=[make_result(2, probs(0.41))]),
        make_scan(3, date(2026, 5, 1), results=[make_result(3, probs(0.12))]),
    ]
    later = read(scans)
    falling = build_report(later[1], history=later, generated_at=_WHEN)
    assert any(
        "pneumonia score fell from 41% to 12% since 1 Apr 2026" in q for q in falling.questions
    )
    # The report describes the record as of its scan: later films are not its history.
    earlier = build_report(later[0], history=later, generated_at=_WHEN)
    assert earlier.changes == () and [p.scan_id for p in earlier.timeline] == [2] * 4


def test_different_model_versions_are_not_read_as_change() -> None:
    history = read(
        [
            make_scan(
                1, date(2026, 3, 2), results=[make_result(1, probs(0.05), model_version="1")]
            ),
            make_scan(2, date(2026, 4, 1), results=[make_result(2, probs(0.6), model_version="2")]),
        ],
        current_version=None,
    )
    report = build_report(history[1], history=history, generated_at=_WHEN)
    assert not any("rose" in q for q in report.questions)
    assert any("different model versions" in q for q in report.questions)
    assert "re-score the older scan" in report.changes[0]


def test_abstained_and_unscored_scans() -> None:
    abstained = make_scan(
        1,
        date(2026, 1, 1),
        results=[
            make_result(
                1, probs(0.9), abstained=True, abstain_reason="This looks like a colour photograph."
            )
        ],
    )
    (reading,) = read([abstained])
    report = build_report(reading, generated_at=_WHEN)
    assert report.abstained and report.abstain_reason == "This looks like a colour photograph."
    assert report.findings == () and report.timeline == ()
    assert "This looks like a colour photograph." in " ".join(report.summary)
    assert "90%" not in report_to_json(report)
    assert report.questions[0].startswith("The model could not read this image reliably")
    assert report.model_version is None
    (unscored,) = read([make_scan(2, date(2026, 1, 2))])
    empty = build_report(unscored, generated_at=_WHEN)
    assert empty.findings == () and empty.model_version is None
    assert "not been scored" in empty.summary[0]
    assert empty.status == "Awaiting re-score"


def test_a_side_view_report_has_no_number_and_says_why() -> None:
    scan = make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.9))], view=View.LATERAL)
    (reading,) = read([scan])
    report = build_report(reading, history=[reading], generated_at=_WHEN)
    assert report.findings == () and report.red_flags == () and report.timeline == ()
    assert "not scored" in report.summary[0]
    assert "90%" not in _pdf_text(report_to_pdf(report))


def test_pdf_is_valid_and_contains_the_text_and_image() -> None:
    history = _rising_pair()
    note = ReportNote(
        "dr_lee",
        _WHEN,
        "Left lower zone looks hazy \u2014 repeat in 2 weeks.",
        make_annotation(10, 10, 64, 64),
    )
    report = build_report(
        history[1], history=history, image=_rgb(), notes=[note], generated_at=_WHEN
    )
    assert report.image is not None and report.image.shape == (64, 64, 3)
    pdf = report_to_pdf(report)
    assert pdf.startswith(b"%PDF")
    text = _pdf_text(pdf)
    assert "/Subtype /Image" in text
    for expected in (
        "Decision support only",
        "Questions you could ask your clinician",
        "rose from 12% to 41%",
        "Glossary",
        "COVID-19-like pattern",
        "Left lower zone looks hazy - repeat",
        "(Mark 1 on the image)",
    ):
        assert expected in text, expected
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 1


def test_json_round_trips_the_content_without_the_image() -> None:
    history = _rising_pair()
    report = build_report(history[1], history=history, image=_rgb(), generated_at=_WHEN)
    data = json.loads(report_to_json(report))
    assert data["scan_date"] == "2026-04-01"
    assert data["generated_at"] == "2026-04-02T09:30:00+00:00"
    assert data["disclaimer"] == DISCLAIMER
    assert data["has_image"] is True and "image" not in data
    assert data["findings"][0] == {
        "finding": "pneumonia",
        "label": "Pneumonia",
        "probability": 0.41,
        "threshold": 0.5,
        "above_threshold": False,
        "note": None,
    }
    assert data["red_flags"] == [
        "Bacterial pneumonia is at 62%, at or above its level of 50%.",
        "Pneumonia rose from 12% to 41% since the PA film of 2 Mar 2026.",
        "Bacterial pneumonia rose from 5% to 62% since the PA film of 2 Mar 2026.",
    ]
    assert data["status"] == "Scored"


def test_a_score_at_its_threshold_counts_as_reached_and_missing_thresholds_fall_back() -> None:
    stored = make_result(1, probs(0.37), thresholds={"pneumonia": 0.37})
    (reading,) = read([make_scan(1, date(2026, 4, 1), results=[stored])])
    line = build_report(reading, generated_at=_WHEN).findings[0]
    assert (line.threshold, line.above_threshold) == (0.37, True)
    unstored = make_result(1, probs(0.37), thresholds={})
    (fallback,) = read([make_scan(1, date(2026, 4, 1), results=[unstored])])
    assert not build_report(fallback, generated_at=_WHEN).findings[0].above_threshold


def test_pdf_numbers_only_marked_notes_and_prints_the_image_note() -> None:
    history = _rising_pair()
    notes = [
        ReportNote("dr_lee", _WHEN, "No mark on this one."),
        ReportNote("dr_kim", _WHEN, "Hazy here.", make_annotation(10, 10, 64, 64)),
    ]
    note = ORIGINAL_CAPTION
    report = build_report(
        history[1], image=_rgb(), image_note=note, notes=notes, generated_at=_WHEN
    )
    text = _pdf_text(report_to_pdf(report))
    assert "2 Apr 2026 09:30 UTC, dr_lee: No mark on this one." in text
    assert "dr_kim (Mark 1 on the image): Hazy here." in text
    assert "could not be reproduced" in text
    assert json.loads(report_to_json(report))["image_note"] == note


def test_a_finding_learned_from_other_patients_is_noted_and_raises_no_question() -> None:
    scan = make_scan(1, date(2026, 4, 1), results=[make_result(1, probs(0.1, bacterial=0.9))])
    (reading,) = read([scan], population=ADULT, validity=VALIDITY)
    report = build_report(reading, history=[reading])
    (line,) = [f for f in report.findings if f.finding == "bacterial_pneumonia"]
    assert not line.above_threshold and line.note is not None
    assert "learned from children aged 1-5 only" in line.note
    assert not any("bacterial" in question.lower() for question in report.questions)
    assert report.summary[-1] == reading.explanation
    # The report's chart plots what the Timeline plots by default: no greyed finding.
    assert {point.finding for point in report.timeline} == {"pneumonia", "covid19"}


def test_previous_comparable_is_the_latest_earlier_day_of_the_same_projection() -> None:
    def film(id: int, day: int, view: View, doubt: str | None = None) -> ScanSummary:
        result = make_result(id, probs(0.1))
        return make_scan(id, date(2026, 1, day), results=[result], view=view, view_doubt=doubt)

    readings = read(
        [
            film(1, 1, View.PA),
            film(2, 2, View.AP),
            film(5, 2, View.PA, "This does not look like a frontal film."),
            film(3, 3, View.PA),
            film(4, 3, View.PA),
            film(6, 4, View.LATERAL),
        ]
    )
    by_id = {reading.scan_id: reading for reading in readings}
    assert previous_comparable(readings, by_id[4]).scan_id == 1
    assert previous_comparable(readings, by_id[2]) is None
    assert previous_comparable(readings, by_id[6]) is None
