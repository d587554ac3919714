"""The report's PDF: page count and text, headings kept with their content, no blank pages."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from core.annotations import make_annotation
from core.findings import DISCLAIMER
from core.report import Report, ReportNote, build_report
from core.report_pdf import HEADINGS, report_to_pdf
from core.views import View
from tests.core._pdf import IMAGE_LINE, page_count, page_lines
from tests.core._records import make_result, make_scan, probs, read

_WHEN = datetime(2026, 4, 2, 9, 30, tzinfo=UTC)


def _report(notes: int = 1, scans: int = 6, image_side: int = 256) -> Report:
    history = read(
        [
            make_scan(
                i,
                date(2025, i, 3),
                "1.2.840.113619.2.55.3.dcm",
                results=[make_result(i, probs(0.1 + 0.07 * i, bacterial=0.3 + 0.05 * i))],
            )
            for i in range(1, scans + 1)
        ]
    )
    marks = [
        ReportNote(
            f"dr_{k}",
            _WHEN,
            "Hazy at the left base; repeat the film in six weeks and compare. " * (1 + k % 3),
            make_annotation(10 + k, 10, image_side, image_side, 40, 30),
        )
        for k in range(notes)
    ]
    grey = np.random.default_rng(0).integers(0, 255, (image_side, image_side), dtype=np.uint8)
    return build_report(
        history[-1],
        history=history,
        filename="1.2.840.113619.2.55.3.dcm",
        image=np.repeat(grey[..., None], 3, axis=2),
        notes=marks,
        patient_name="Ana Ruiz",
        zone="Europe/Madrid",
        generated_at=_WHEN,
    )


def _is_footer(line: str) -> bool:
    return " - page " in line and line.startswith("Ana Ruiz - scan of")


def test_the_pdf_names_the_patient_the_scan_and_the_local_time_and_has_the_timeline() -> None:
    pdf = report_to_pdf(_report())
    pages = page_lines(pdf)
    assert page_count(pdf) == len(pages) >= 2
    text = "\n".join(line for page in pages for line in page)
    assert "Patient Ana Ruiz" in text
    assert "Scan 3 Jun 2025, frontal (PA, standing)" in text
    assert "Report made 2 Apr 2026 11:30 CEST" in text and "UTC" not in text
    assert "Your scores over time" in text and "3 Jan 2025" in text
    assert "(Mark 1 on the image)" in text and IMAGE_LINE in text
    assert ".dcm" not in text
    count = len(pages)
    assert [page[-1] for page in pages] == [
        f"Ana Ruiz - scan of 3 Jun 2025 - page {n} of {count}" for n in range(1, count + 1)
    ]


def test_the_disclaimer_is_printed_exactly_once() -> None:
    pdf = report_to_pdf(_report())
    text = " ".join(line for page in page_lines(pdf) for line in page)
    assert text.count(DISCLAIMER[:40]) == 1


def test_the_model_identity_is_only_in_the_details_at_the_end() -> None:
    pages = page_lines(report_to_pdf(_report()))
    lines = [line for page in pages for line in page if not _is_footer(line)]
    model = [i for i, line in enumerate(lines) if "cxr-densenet" in line]
    assert model and min(model) > lines.index("Details")


@pytest.mark.parametrize("notes", range(0, 13, 2))
@pytest.mark.parametrize("scans", [1, 6])
def test_no_page_ends_with_a_heading_and_no_last_page_is_nearly_empty(notes, scans) -> None:
    pdf = report_to_pdf(_report(notes=notes, scans=scans))
    pages = page_lines(pdf)
    assert page_count(pdf) == len(pages)
    for number, page in enumerate(pages, start=1):
        body = [line for line in page if not _is_footer(line)]
        assert body[-1] not in HEADINGS, f"page {number} ends with the heading {body[-1]!r}"
    if len(pages) > 1:
        assert len([line for line in pages[-1] if not _is_footer(line)]) >= 8


def test_a_report_of_an_unknown_view_and_without_a_name_says_so() -> None:
    scan = make_scan(1, date(2026, 1, 9), results=[make_result(1, probs(0.2))], view=View.UNKNOWN)
    (reading,) = read([scan])
    text = " ".join(
        line for page in page_lines(report_to_pdf(build_report(reading))) for line in page
    )
    assert "Scan 9 Jan 2026, view not known" in text
    assert "Patient (no name given)" in text
    # A film of unknown view is not scored: its old number is printed nowhere.
    assert "20%" not in text and "Your scores over time" not in text
