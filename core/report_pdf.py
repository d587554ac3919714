"""A scan's report as an A4 PDF: headings kept with their text, no blank half pages.

The layout rules: a heading never ends a page (it moves to the next page with the first block
of its section); the image shrinks to fit the space left on its page, down to a readable
size, rather than leaving half a page blank; and when the last page would carry only a few
lines, the whole report is laid out again slightly more compactly. The disclaimer is printed
once, in a box under the title; times are in the reader's time zone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fpdf import FPDF
from PIL import Image

from core.annotations import mark_labels
from core.findings import FINDING_LABELS, FINDINGS
from core.labels import format_day
from core.localtime import format_local
from core.report import Report, TimelinePoint
from core.timeline import FINDING_COLOURS, format_percent

#: Every section heading the PDF can print (tests check none of them ends a page).
HEADINGS: tuple[str, ...] = (
    "Summary",
    "Scores",
    "Points to raise",
    "Change since the previous scan",
    "Image (coloured areas: where the model looked most)",
    "Your scores over time",
    "Clinician notes",
    "What the model cannot tell",
    "Questions you could ask your clinician",
    "Glossary",
    "Details",
)

#: Probabilities labelled on the chart's log-odds axis (as on the app's timeline).
_TICKS = (0.01, 0.1, 0.5, 0.9, 0.99)
_LOGIT_RANGE = (math.log(0.005 / 0.995), math.log(0.995 / 0.005))

#: Characters outside Latin-1 that appear in ordinary text, for the PDF's built-in fonts.
_LATIN1_FALLBACKS = str.maketrans(
    {
        "\u2013": "-",
        "\u2014": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2026": "...",
        "\u2265": ">=",
        "\u2264": "<=",
    }
)


def _pdf_text(text: str) -> str:
    # The PDF core fonts cover Latin-1 only; anything else becomes "?" rather than failing.
    return text.translate(_LATIN1_FALLBACKS).encode("latin-1", "replace").decode("latin-1")


@dataclass(frozen=True)
class _Layout:
    """Sizes of one layout attempt (mm); later attempts are more compact."""

    image_max: float
    image_min: float
    chart: float
    line: float
    gap: float


_LAYOUTS = (
    _Layout(image_max=125, image_min=80, chart=62, line=5.0, gap=1.0),
    _Layout(image_max=105, image_min=70, chart=54, line=4.6, gap=0.6),
    _Layout(image_max=90, image_min=60, chart=48, line=4.3, gap=0.4),
)

#: A last page holding less than this share of the writable height counts as near-empty.
_NEAR_EMPTY = 0.2


class _ReportPDF(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(format="A4")
        self._footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", "I", 7)
        self.cell(
            0, 4, _pdf_text(f"{self._footer_text} - page {self.page_no()} of {{nb}}"), align="C"
        )


class _Writer:
    """Writes blocks, keeping each heading on the page of its section's first block."""

    def __init__(self, pdf: _ReportPDF, layout: _Layout) -> None:
        self.pdf = pdf
        self.layout = layout

    def room(self) -> float:
        return self.pdf.page_break_trigger - self.pdf.get_y()

    def text_height(self, text: str, *, bullet: bool = False) -> float:
        self.pdf.set_font("Helvetica", "", 10)
        lines: list[str] = self.pdf.multi_cell(  # type: ignore[assignment]
            0,
            self.layout.line,
            _pdf_text(f"- {text}" if bullet else text),
            dry_run=True,
            output="LINES",
        )
        return len(lines) * self.layout.line + self.layout.gap

    def section(self, heading: str, first_height: float, first: Callable[[], None]) -> None:
        """A heading and its first block, on a new page when both do not fit here."""
        if 9 + first_height > self.room():
            self.pdf.add_page()
        self.pdf.ln(2)
        self.pdf.set_font("Helvetica", "B", 12)
        self.pdf.cell(0, 7, _pdf_text(heading), new_x="LMARGIN", new_y="NEXT")
        self.pdf.set_font("Helvetica", "", 10)
        first()

    def paragraph(self, text: str, *, bullet: bool = False) -> None:
        self.pdf.set_font("Helvetica", "", 10)
        self.pdf.multi_cell(
            0,
            self.layout.line,
            _pdf_text(f"- {text}" if bullet else text),
            new_x="LMARGIN",
            new_y="NEXT",
        )
        self.pdf.ln(self.layout.gap)

    def items(self, heading: str, lines: Sequence[str], *, bullet: bool = True) -> None:
        """A section of paragraphs; only the first is kept with the heading."""
        if not lines:
            return
        self.section(
            heading,
            self.text_height(lines[0], bullet=bullet),
            lambda: self.paragraph(lines[0], bullet=bullet),
        )
        for line in lines[1:]:
            self.paragraph(line, bullet=bullet)


def _header(pdf: _ReportPDF, report: Report) -> None:
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 8, _pdf_text(report.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    made = format_local(report.generated_at, report.zone)
    for label, value in (
        ("Patient", report.patient_name or "(no name given)"),
        ("Scan", report.scan_words),
        ("Report made", made),
    ):
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(28, 5, _pdf_text(label))
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 5, _pdf_text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 10)
    pdf.multi_cell(
        0, 5, _pdf_text(report.disclaimer), border=1, padding=2, new_x="LMARGIN", new_y="NEXT"
    )
    pdf.set_font("Helvetica", "", 10)


def _image(writer: _Writer, report: Report) -> None:
    if report.image is None:
        return
    pdf, layout = writer.pdf, writer.layout
    caption = report.image_note
    caption_height = writer.text_height(caption) if caption else 0.0
    with Image.fromarray(report.image) as picture:
        aspect = picture.height / picture.width
        fits = writer.room() - 9 - 4 - caption_height
        height = min(layout.image_max, pdf.epw * aspect)
        if fits >= layout.image_min:
            height = min(height, fits)

        def draw() -> None:
            width = height / aspect
            pdf.image(picture, x=pdf.l_margin + (pdf.epw - width) / 2, w=width, h=height)
            pdf.ln(2)
            if caption:
                writer.paragraph(caption)

        writer.section(HEADINGS[4], height + 2 + caption_height, draw)


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _logit(probability: float) -> float:
    clipped = min(max(probability, 0.005), 0.995)
    return math.log(clipped / (1 - clipped))


def _draw_timeline(
    pdf: FPDF, points: Sequence[TimelinePoint], current: int, top: float, height: float
) -> None:
    """Each finding's score per scan date on a log-odds axis, the reported scan marked."""
    left, width = pdf.l_margin + 12, pdf.epw - 12
    plot_height = height - 14  # room for the date labels and the legend below
    dates = sorted({point.scan_date for point in points})
    span = (dates[-1] - dates[0]).days

    def x_of(day_index: int) -> float:
        if span == 0:
            return left + width / 2
        return left + 4 + (width - 8) * (dates[day_index] - dates[0]).days / span

    def y_of(probability: float) -> float:
        low, high = _LOGIT_RANGE
        return top + plot_height * (1 - (_logit(probability) - low) / (high - low))

    pdf.set_draw_color(180, 180, 180)
    pdf.set_line_width(0.2)
    pdf.set_font("Helvetica", "", 7)
    for tick in _TICKS:
        y = y_of(tick)
        pdf.line(left, y, left + width, y)
        pdf.text(pdf.l_margin, y + 1, format_percent(tick))
    pdf.rect(left, top, width, plot_height)
    index = {day: i for i, day in enumerate(dates)}
    labelled = dates if len(dates) <= 8 else dates[:: math.ceil(len(dates) / 8)]
    for day in labelled:
        pdf.text(x_of(index[day]) - 7, top + plot_height + 4, format_day(day))
    reported = [point for point in points if point.scan_id == current]
    if reported:
        x = x_of(index[reported[0].scan_date])
        pdf.set_draw_color(120, 120, 120)
        pdf.set_dash_pattern(dash=1, gap=1)
        pdf.line(x, top, x, top + plot_height)
        pdf.set_dash_pattern()
    legend_x = left
    for finding in FINDINGS:
        mine = [point for point in points if point.finding == finding]
        if not mine:
            continue
        pdf.set_draw_color(*_hex_rgb(FINDING_COLOURS[finding]))
        pdf.set_fill_color(*_hex_rgb(FINDING_COLOURS[finding]))
        pdf.set_line_width(0.5)
        coords = [(x_of(index[point.scan_date]), y_of(point.probability)) for point in mine]
        if len(coords) > 1:
            pdf.polyline(coords)
        for x, y in coords:
            pdf.circle(x, y, 0.9, style="F")
        pdf.set_line_width(0.2)
        pdf.rect(legend_x, top + plot_height + 7, 3, 3, style="F")
        label = FINDING_LABELS[finding]
        pdf.text(legend_x + 4, top + plot_height + 9.5, _pdf_text(label))
        legend_x += 6 + pdf.get_string_width(label)
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)
    pdf.set_y(top + height)


def _timeline(writer: _Writer, report: Report) -> None:
    if not report.timeline:
        return
    height = writer.layout.chart
    caption = (
        "Each line is one finding's score on your scans, on a scale that spreads out scores "
        "near 0% and 100%; the dashed line marks the scan of this report."
    )

    def draw() -> None:
        _draw_timeline(writer.pdf, report.timeline, report.scan_id, writer.pdf.get_y(), height)
        writer.pdf.set_font("Helvetica", "I", 8)
        writer.pdf.multi_cell(0, 4, _pdf_text(caption), new_x="LMARGIN", new_y="NEXT")

    writer.section(HEADINGS[5], height + 9, draw)


def _notes(report: Report) -> list[str]:
    labels = mark_labels([note.annotation for note in report.notes])
    return [
        f"{format_local(note.created_at, report.zone)}, {note.author}"
        f"{f' ({label} on the image)' if label else ''}: {note.text}"
        for note, label in zip(report.notes, labels, strict=True)
    ]


def _details(report: Report) -> list[str]:
    lines = [f"Report for scan number {report.scan_id}."]
    if report.model_words is not None:
        lines.insert(0, f"Scores from the model {report.model_words}.")
    return lines


def _render(report: Report, layout: _Layout) -> _ReportPDF:
    who = f"{report.patient_name} - " if report.patient_name else ""
    pdf = _ReportPDF(f"{who}scan of {format_day(report.scan_date)}")
    pdf.set_auto_page_break(auto=True, margin=16)
    pdf.set_title(_pdf_text(report.title))
    pdf.add_page()
    _header(pdf, report)
    writer = _Writer(pdf, layout)
    writer.items("Summary", report.summary, bullet=False)
    writer.items(
        "Scores",
        [
            f"{line.label}: {format_percent(line.probability)} "
            f"({'at or above' if line.above_threshold else 'below'} its level of "
            f"{format_percent(line.threshold)})" + (f". {line.note}" if line.note else "")
            for line in report.findings
        ],
    )
    writer.items("Points to raise", report.red_flags)
    writer.items("Change since the previous scan", report.changes)
    _image(writer, report)
    _timeline(writer, report)
    writer.items("Clinician notes", _notes(report))
    writer.items("What the model cannot tell", report.limitations)
    writer.items("Questions you could ask your clinician", report.questions)
    writer.items(
        "Glossary", [f"{label}: {text}" for label, text in report.glossary.items()], bullet=False
    )
    writer.items("Details", _details(report))
    return pdf


def _near_empty_last_page(pdf: _ReportPDF) -> bool:
    writable = pdf.page_break_trigger - pdf.t_margin
    return pdf.page_no() > 1 and (pdf.get_y() - pdf.t_margin) < _NEAR_EMPTY * writable


def report_to_pdf(report: Report) -> bytes:
    """Render a report as an A4 PDF.

    Args:
        report: The report.

    Returns:
        The PDF file's bytes.
    """
    attempts = []
    for layout in _LAYOUTS:
        pdf = _render(report, layout)
        if not _near_empty_last_page(pdf):
            return bytes(pdf.output())
        attempts.append(pdf)
    # Every layout leaves a near-empty last page: take the one with the fewest pages.
    return bytes(min(attempts, key=lambda attempt: attempt.page_no()).output())
