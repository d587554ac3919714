"""Tests of the scan report: content, questions, image and PDF/JSON export."""

from __future__ import annotations

import io
import json
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
from PIL import Image

from core.annotations import make_annotation
from core.enhance import ORIGINAL_CAPTION
from core.findings import DISCLAIMER, FINDING_LABELS
from core.reading import read_result
from core.report import (
    GENERAL_QUESTIONS,
    ReportNote,
    build_report,
    report_to_json,
)
from core.report_pdf import report_to_pdf
from core.words import in_sentence
from storage.scans import ScanSummary
from tests.core._records import make_result, make_scan, probs

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


def _rising_pair() -> tuple[ScanSummary, ScanSummary]:
    previous = make_scan(1, date(2026, 3, 2), "march.png", results=[make_result(1, probs(0.12))])
    current = make_scan(
        2, date(2026, 4, 1), "april.png", results=[make_result(2, probs(0.41, bacterial=0.62))]
    )
    return previous, current


def test_summary_says_what_was_checked_found_and_cannot_tell() -> None:
    previous, current = _rising_pair()
    report = build_report(current, previous=previous, current_version="1", generated_at=_WHEN)
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


def test_questions_are_triggered_by_a_rising_finding_and_a_high_score() -> None:
    previous, current = _rising_pair()
    report = build_report(current, previous=previous, generated_at=_WHEN)
    assert any(
        "pneumonia score rose from 12% to 41% since 2 Mar 2026" in q for q in report.questions
    )
    assert any(
        q.startswith("The model scored bacterial pneumonia at 62%") for q in report.questions
    )
    assert "Pneumonia: higher (12% to 41%) since the scan of 2 Mar 2026." in report.changes
    assert report.questions[-2:] == GENERAL_QUESTIONS


def test_without_a_previous_scan_there_is_no_change_and_a_fall_asks_about_recovery() -> None:
    previous, current = _rising_pair()
    alone = build_report(current, generated_at=_WHEN)
    assert not any("rose" in q for q in alone.questions)
    assert alone.changes == ()
    later = make_scan(3, date(2026, 5, 1), results=[make_result(3, probs(0.12))])
    falling = build_report(later, previous=current, generated_at=_WHEN)
    assert any(
        "pneumonia score fell from 41% to 12% since 1 Apr 2026" in q for q in falling.questions
    )


def test_different_model_versions_are_not_read_as_change() -> None:
    previous = make_scan(
        1, date(2026, 3, 2), results=[make_result(1, probs(0.05), model_version="1")]
    )
    current = make_scan(
        2, date(2026, 4, 1), results=[make_result(2, probs(0.6), model_version="2")]
    )
    report = build_report(current, previous=previous, current_version="2", generated_at=_WHEN)
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
    report = build_report(abstained, generated_at=_WHEN)
    assert "not be relied on" in " ".join(report.summary)
    assert "colour photograph)" in " ".join(report.summary)
    assert report.questions[0].startswith("The model could not read this image reliably")
    unscored = build_report(make_scan(2, date(2026, 1, 2)), generated_at=_WHEN)
    assert unscored.findings == () and unscored.model_version is None
    assert "not been checked" in unscored.summary[0]


def test_pdf_is_valid_and_contains_the_text_and_image() -> None:
    previous, current = _rising_pair()
    note = ReportNote(
        "dr_lee",
        _WHEN,
        "Left lower zone looks hazy \u2014 repeat in 2 weeks.",
        make_annotation(10, 10, 64, 64),
    )
    report = build_report(
        current,
        previous=previous,
        image=np.random.default_rng(0).random((64, 64)).astype(np.float32),
        heatmap=np.ones((8, 8), dtype=np.float32),
        notes=[note],
        generated_at=_WHEN,
    )
    assert report.image_png is not None
    assert Image.open(io.BytesIO(report.image_png)).size == (64, 64)
    pdf = report_to_pdf(report)
    assert pdf.startswith(b"%PDF")
    text = _pdf_text(pdf)
    assert "/Subtype /Image" in text
    for expected in (
        "Decision support only",
        "Questions you could ask your clinician",
        "rose from 12% to 41%",
        "Glossary",
        "COVID-19 pneumonia",
        "Left lower zone looks hazy - repeat",
        "(Mark 1 on the image)",
    ):
        assert expected in text, expected
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 1


def test_json_round_trips_the_content_without_the_image() -> None:
    previous, current = _rising_pair()
    report = build_report(
        current,
        previous=previous,
        red_flag_reasons=["Pneumonia rose from 12% to 41% since the PA film of 2 Mar 2026."],
        image=np.zeros((64, 64), dtype=np.float32),
        generated_at=_WHEN,
    )
    data = json.loads(report_to_json(report))
    assert data["scan_date"] == "2026-04-01"
    assert data["generated_at"] == "2026-04-02T09:30:00+00:00"
    assert data["disclaimer"] == DISCLAIMER
    assert data["has_image"] is True and "image_png" not in data
    assert data["findings"][0] == {
        "finding": "pneumonia",
        "label": "Pneumonia",
        "probability": 0.41,
        "threshold": 0.5,
        "above_threshold": False,
        "note": None,
    }
    assert data["red_flags"] == ["Pneumonia rose from 12% to 41% since the PA film of 2 Mar 2026."]


def test_a_score_at_its_threshold_counts_as_reached_and_missing_thresholds_fall_back() -> None:
    stored = make_result(1, probs(0.37), thresholds={"pneumonia": 0.37})
    scan = make_scan(1, date(2026, 4, 1), results=[stored])
    line = build_report(scan, generated_at=_WHEN).findings[0]
    assert (line.threshold, line.above_threshold) == (0.37, True)
    unstored = make_scan(1, date(2026, 4, 1), results=[make_result(1, probs(0.37), thresholds={})])
    fallback = build_report(unstored, thresholds={"pneumonia": 0.3}, generated_at=_WHEN)
    assert fallback.findings[0].above_threshold
    assert not build_report(unstored, generated_at=_WHEN).findings[0].above_threshold


def test_pdf_numbers_only_marked_notes_and_prints_the_image_note() -> None:
    _, current = _rising_pair()
    notes = [
        ReportNote("dr_lee", _WHEN, "No mark on this one."),
        ReportNote("dr_kim", _WHEN, "Hazy here.", make_annotation(10, 10, 64, 64)),
    ]
    note = ORIGINAL_CAPTION
    image = np.zeros((64, 64), dtype=np.float32)
    report = build_report(current, image=image, image_note=note, notes=notes, generated_at=_WHEN)
    text = _pdf_text(report_to_pdf(report))
    assert "2 Apr 2026 09:30 UTC, dr_lee: No mark on this one." in text
    assert "dr_kim (Mark 1 on the image): Hazy here." in text
    assert "could not be reproduced" in text
    assert json.loads(report_to_json(report))["image_note"] == note


def test_a_finding_learned_from_other_patients_is_noted_and_raises_no_question() -> None:
    @dataclass(frozen=True)
    class Verdict:
        valid: bool

    table = {("pneumonia", "child"): Verdict(True), ("pneumonia", "adult"): Verdict(False)}
    scan = make_scan(1, date(2026, 4, 1), results=[make_result(1, probs(0.9))])
    reading = read_result(probs(0.9), {"pneumonia": 0.5}, "adult", table)
    report = build_report(scan, reading=reading)
    (line,) = [f for f in report.findings if f.finding == "pneumonia"]
    assert line.above_threshold and line.note is not None
    assert "learned from children aged 1-5 only" in line.note
    assert not any("pneumonia" in question.lower() for question in report.questions)
    assert report.summary[-1] == reading.explanation
