"""Plain-language report of one scan, with its annotated image, as a PDF or JSON download.

The report explains what was checked, what the model found and what it cannot
tell, gives a short glossary of the findings, suggests questions for the
clinician (drawn from the findings and their change since the previous scan)
and always carries the decision-support disclaimer.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import numpy as np
import plotly.graph_objects as go
from fpdf import FPDF
from PIL import Image, ImageDraw

from core.compare import HIGHER, LOWER, Comparison, compare_scans
from core.findings import DISCLAIMER, FINDING_LABELS, FINDINGS
from core.timeline import ResultLike, ScanLike, format_percent, format_version, select_result, threshold_for

#: Educational description of each finding, in plain words.
GLOSSARY: dict[str, str] = {
    "pneumonia": (
        "An infection that inflames the air sacs of one or both lungs, which can fill with fluid. "
        "On an X-ray it can show as white, cloudy patches where the lung should look dark."
    ),
    "bacterial_pneumonia": (
        "Pneumonia caused by bacteria. It often affects one area (a lobe) of a lung and is usually "
        "treated with antibiotics, which a clinician decides on."
    ),
    "viral_pneumonia": (
        "Pneumonia caused by a virus, such as influenza. It often shows as a more spread-out pattern "
        "in both lungs; antibiotics do not treat viruses."
    ),
    "covid19": (
        "Pneumonia caused by the SARS-CoV-2 virus. On an X-ray it often shows as hazy patches towards "
        "the edges and lower parts of both lungs; only a laboratory test confirms the virus."
    ),
}

LIMITATIONS: tuple[str, ...] = (
    "The model sees only this image: it knows nothing of your symptoms, history, examination or tests.",
    "A score is not the chance that you are ill, and a low score does not rule disease out.",
    "The model learned from public collections of X-rays and can be less accurate for people, "
    "ages or X-ray machines unlike those.",
    "It looks only for the findings listed here, not for other conditions such as fractures, "
    "tumours or heart problems.",
)

GENERAL_QUESTIONS: tuple[str, ...] = (
    "How do these results fit with my symptoms and your examination?",
    "Do I need a follow-up X-ray or other tests, and when?",
)

#: Largest side of the image embedded in a report, in pixels (keeps the PDF small).
_MAX_IMAGE_SIDE = 1024

#: Colour ramp of the heatmap (dark blue -> red -> yellow), at evenly spaced levels.
_HEAT_RAMP = np.array([[0, 0, 130], [0, 120, 255], [255, 60, 0], [255, 230, 0]], dtype=np.float32)

_ANNOTATION_COLOUR = (0, 255, 120)


@dataclass(frozen=True)
class ReportFinding:
    """One finding's line in the report.

    Attributes:
        finding: Finding name.
        label: Plain-language name.
        probability: The model's score in [0, 1].
        threshold: Decision threshold of the model version that scored it.
        above_threshold: Whether the score reaches the threshold.
    """

    finding: str
    label: str
    probability: float
    threshold: float
    above_threshold: bool


@dataclass(frozen=True)
class ReportNote:
    """A clinician's note shown in the report.

    Attributes:
        author: Who wrote it.
        created_at: When.
        text: The note.
        annotation: The marked point or box, if any (see :func:`make_annotation`).
    """

    author: str
    created_at: datetime
    text: str
    annotation: Mapping[str, float] | None = None


@dataclass(frozen=True)
class Report:
    """Everything shown in a scan's report.

    Attributes:
        title: Heading.
        scan_id: The scan.
        scan_date: Date the X-ray was taken.
        filename: Uploaded file name.
        generated_at: When the report was built (UTC).
        model_name: Model that scored the scan (``None`` if never scored).
        model_version: Its version.
        abstained: Whether the model declined to give a reliable answer.
        abstain_reason: Why, in plain words.
        findings: Scores per finding.
        summary: Plain-language paragraphs.
        limitations: What the model cannot tell.
        changes: Sentences on change since the previous scan.
        red_flags: Reasons this scan is flagged (see ``core.timeline.red_flags``).
        questions: Suggested questions for the clinician.
        glossary: Plain-language name -> explanation, for every finding.
        notes: Clinicians' notes on this scan.
        disclaimer: Decision-support disclaimer.
        image_png: Annotated image as PNG bytes (not part of the JSON export).
    """

    title: str
    scan_id: int
    scan_date: date
    filename: str
    generated_at: datetime
    model_name: str | None
    model_version: str | None
    abstained: bool
    abstain_reason: str | None
    findings: tuple[ReportFinding, ...]
    summary: tuple[str, ...]
    limitations: tuple[str, ...]
    changes: tuple[str, ...]
    red_flags: tuple[str, ...]
    questions: tuple[str, ...]
    glossary: dict[str, str]
    notes: tuple[ReportNote, ...] = ()
    disclaimer: str = DISCLAIMER
    image_png: bytes | None = field(default=None, repr=False)


# --------------------------------------------------------------------------- images


def make_annotation(x: float, y: float, width: int, height: int, w: float = 0, h: float = 0) -> dict[str, float]:
    """Build a marked point (``w = h = 0``) or box on an image of ``width`` x ``height`` pixels.

    Args:
        x: Point, or left edge of the box, in pixels from the left.
        y: Point, or top edge of the box, in pixels from the top.
        width: Image width in pixels.
        height: Image height in pixels.
        w: Box width in pixels (0 for a point).
        h: Box height in pixels (0 for a point).

    Returns:
        ``{"x", "y"}`` for a point or ``{"x0", "y0", "x1", "y1"}`` for a box,
        the forms ``storage.records.add_note`` stores.

    Raises:
        ValueError: A negative size, or a mark not inside the image.
    """
    if w < 0 or h < 0:
        raise ValueError("A box needs a positive width and height.")
    if not (0 <= x <= width and 0 <= y <= height and x + w <= width and y + h <= height):
        raise ValueError(f"The mark must lie inside the image ({width} x {height} pixels).")
    if w == 0 and h == 0:
        return {"x": float(x), "y": float(y)}
    return {"x0": float(x), "y0": float(y), "x1": float(x + w), "y1": float(y + h)}


def _resize(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if values.shape == shape:
        return values
    image = Image.fromarray(values.astype(np.float32), mode="F")
    return np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR), dtype=np.float32)


def overlay_heatmap(pixels: np.ndarray, heatmap: np.ndarray | None = None, alpha: float = 0.45) -> np.ndarray:
    """Blend a heatmap over a grayscale image.

    Args:
        pixels: Grayscale image, float in [0, 1], shape (H, W).
        heatmap: Attention map in [0, 1], any (h, w); resized to the image.
            ``None`` gives the plain image in RGB.
        alpha: Largest opacity of the heat colours (reached where the map is 1),
            so that cold regions leave the X-ray readable.

    Returns:
        RGB image, uint8, shape (H, W, 3).
    """
    gray = np.clip(np.asarray(pixels, dtype=np.float32), 0, 1)
    rgb = np.repeat(gray[..., None], 3, axis=2) * 255
    if heatmap is not None:
        heat = np.clip(_resize(np.asarray(heatmap, dtype=np.float32), gray.shape), 0, 1)
        levels = np.linspace(0, 1, len(_HEAT_RAMP))
        colours = np.stack([np.interp(heat, levels, _HEAT_RAMP[:, c]) for c in range(3)], axis=2)
        weight = (alpha * heat)[..., None]
        rgb = rgb * (1 - weight) + colours * weight
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def draw_annotations(rgb: np.ndarray, annotations: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Draw numbered points and boxes (in image pixels) on an RGB image.

    Args:
        rgb: uint8 image (H, W, 3).
        annotations: Points ``{"x", "y"}`` or boxes ``{"x0", "y0", "x1", "y1"}`` (see
            :func:`make_annotation`), numbered 1, 2, ... in order.

    Returns:
        A new uint8 image with the marks drawn.
    """
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    stroke = max(2, round(max(image.size) / 300))
    radius = 4 * stroke
    for number, mark in enumerate(annotations, start=1):
        if "x0" in mark:
            x, y = float(mark["x0"]), float(mark["y0"])
            draw.rectangle((x, y, float(mark["x1"]), float(mark["y1"])), outline=_ANNOTATION_COLOUR, width=stroke)
        else:
            x, y = float(mark["x"]), float(mark["y"])
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=_ANNOTATION_COLOUR, width=stroke)
        draw.text((x + radius + 2, max(0.0, y - 2 * radius)), str(number), fill=_ANNOTATION_COLOUR)
    return np.asarray(image)


def annotation_figure(
    rgb: np.ndarray,
    annotations: Sequence[Mapping[str, float]] = (),
    pending: Mapping[str, float] | None = None,
    max_side: int = 768,
) -> go.Figure:
    """Show an image with numbered marks in a plotly figure whose axes are in image pixels.

    The image is downsampled to at most ``max_side`` pixels for the browser, but
    drawn with a pixel step so that axis coordinates (and hover) stay those of
    the full-size image, the coordinates notes are stored in.

    Args:
        rgb: uint8 image (H, W, 3), e.g. from :func:`overlay_heatmap`.
        annotations: Stored marks (points ``{"x", "y"}`` or boxes ``{"x0", "y0", "x1", "y1"}``),
            numbered 1, 2, ... in order.
        pending: A mark being entered, drawn dashed in another colour.
        max_side: Largest side of the image sent to the browser.

    Returns:
        The figure.
    """
    height, width = rgb.shape[:2]
    step = max(1, int(np.ceil(max(height, width) / max_side)))
    small = rgb[::step, ::step]
    fig = go.Figure(go.Image(z=small, dx=step, dy=step, hovertemplate="x %{x}, y %{y}<extra></extra>"))
    radius = max(width, height) / 60
    marks = [(str(n), mark, "#00ff78", "solid") for n, mark in enumerate(annotations, start=1)]
    if pending is not None:
        marks.append(("new", pending, "#ff3b30", "dash"))
    for text, mark, colour, dash in marks:
        line = {"color": colour, "width": 2, "dash": dash}
        if "x0" in mark:
            x0, y0, x1, y1 = (float(mark[k]) for k in ("x0", "y0", "x1", "y1"))
            fig.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line=line)
        else:
            x0, y0 = float(mark["x"]), float(mark["y"])
            fig.add_shape(type="circle", x0=x0 - radius, y0=y0 - radius, x1=x0 + radius, y1=y0 + radius, line=line)
        fig.add_annotation(x=x0, y=y0, text=text, showarrow=False, xanchor="left", yanchor="bottom",
                           font={"color": colour, "size": 14})
    fig.update_layout(margin={"t": 10, "l": 10, "r": 10, "b": 10}, xaxis={"showgrid": False}, yaxis={"showgrid": False})
    return fig


def _png_bytes(rgb: np.ndarray) -> bytes:
    image = Image.fromarray(rgb)
    image.thumbnail((_MAX_IMAGE_SIDE, _MAX_IMAGE_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# --------------------------------------------------------------------------- content


def _findings_of(result: ResultLike, thresholds: Mapping[str, float] | None) -> tuple[ReportFinding, ...]:
    lines = []
    for finding in FINDINGS:
        if finding in result.probabilities:
            value = float(result.probabilities[finding])
            level = threshold_for(result, finding, thresholds)
            lines.append(ReportFinding(finding, FINDING_LABELS[finding], value, level, value >= level))
    return tuple(lines)


def _summary(scan: ScanLike, result: ResultLike | None, findings: Sequence[ReportFinding]) -> tuple[str, ...]:
    looked_for = ", ".join(label.lower() for label in FINDING_LABELS.values())
    when = f"the chest X-ray taken on {scan.scan_date.isoformat()} ({scan.filename})"
    if result is None:
        return (
            f"This report is about {when}. It has not been checked by the model yet, so there are no scores.",
        )
    paragraphs = [
        f"This report is about {when}. A computer model ({result.model_name}, "
        f"version {format_version(result.model_version)}) looked at the image for signs of {looked_for}.",
    ]
    if result.abstained:
        reason = f" ({result.abstain_reason.rstrip('.')})" if result.abstain_reason else ""
        paragraphs.append(
            f"The model was not confident that this image suits it{reason}, so its scores should not be relied on."
        )
    above = [f for f in findings if f.above_threshold]
    if above:
        listed = "; ".join(
            f"{f.label.lower()} {format_percent(f.probability)} (its level is {format_percent(f.threshold)})"
            for f in above
        )
        paragraphs.append(
            f"The model's score reached the level at which it suggests a closer look for: {listed}. "
            "This is a reason to talk to a clinician, not a diagnosis."
        )
    else:
        paragraphs.append(
            "None of the model's scores reached the level at which it suggests a closer look. "
            "This does not rule anything out: discuss the result with a clinician, especially if you feel unwell."
        )
    return tuple(paragraphs)


def _change_lines(comparison: Comparison | None, previous: ScanLike | None) -> tuple[str, ...]:
    if comparison is None or previous is None:
        return ()
    if not comparison.comparable:
        return (comparison.message,)
    since = f"since the scan of {previous.scan_date.isoformat()}"
    return tuple(f"{change.sentence[:-1]} {since}." for change in comparison.changes)


def _questions(
    findings: Sequence[ReportFinding],
    comparison: Comparison | None,
    previous: ScanLike | None,
    result: ResultLike | None,
) -> tuple[str, ...]:
    questions: list[str] = []
    if result is not None and result.abstained:
        questions.append("The model could not read this image reliably. Should the X-ray be repeated?")
    for line in findings:
        if line.above_threshold:
            questions.append(
                f"The model scored {line.label.lower()} at {format_percent(line.probability)}. "
                f"Do you see signs of {line.label.lower()} on my X-ray, and do I need tests or treatment?"
            )
    if comparison is not None and previous is not None:
        if comparison.comparable:
            since = previous.scan_date.isoformat()
            for change in comparison.changes:
                if change.verdict == HIGHER:
                    questions.append(
                        f"My {change.label.lower()} score rose from {format_percent(change.before)} to "
                        f"{format_percent(change.after)} since {since}. Is this a real change, and what should we do next?"
                    )
                elif change.verdict == LOWER:
                    questions.append(
                        f"My {change.label.lower()} score fell from {format_percent(change.before)} to "
                        f"{format_percent(change.after)} since {since}. Does this match how I am recovering?"
                    )
        else:
            questions.append(
                "My scans were scored by different model versions. Should the earlier one be re-scored before we compare them?"
            )
    questions.extend(GENERAL_QUESTIONS)
    return tuple(questions)


def build_report(
    scan: ScanLike,
    *,
    current_version: str | None = None,
    thresholds: Mapping[str, float] | None = None,
    previous: ScanLike | None = None,
    red_flag_reasons: Sequence[str] = (),
    image: np.ndarray | None = None,
    heatmap: np.ndarray | None = None,
    notes: Sequence[ReportNote] = (),
    margin: float = 0.10,
    generated_at: datetime | None = None,
) -> Report:
    """Assemble the report of one scan.

    Args:
        scan: The scan (``ScanSummary``); its result is chosen as on the timeline.
        current_version: Version of the model in use now, if known.
        thresholds: Fallback thresholds (see ``core.timeline.threshold_for``).
        previous: The patient's scan before this one, to describe the change.
        red_flag_reasons: This scan's entry of ``core.timeline.red_flags``.
        image: Grayscale pixels in [0, 1] to embed, if available.
        heatmap: Model attention map for ``image``, if available.
        notes: Clinicians' notes; their marks are drawn on the image.
        margin: Change margin for the comparison with ``previous``.
        generated_at: Timestamp to print (defaults to now, UTC).

    Returns:
        The :class:`Report`.
    """
    result = select_result(scan.results, current_version)
    findings = _findings_of(result, thresholds) if result is not None else ()
    comparison = (
        compare_scans(previous, scan, margin=margin, current_version=current_version) if previous is not None else None
    )
    image_png = None
    if image is not None:
        rgb = overlay_heatmap(image, heatmap)
        marks = [note.annotation for note in notes if note.annotation]
        image_png = _png_bytes(draw_annotations(rgb, marks) if marks else rgb)
    return Report(
        title="Chest X-ray report (decision support)",
        scan_id=scan.id,
        scan_date=scan.scan_date,
        filename=scan.filename,
        generated_at=generated_at or datetime.now(timezone.utc),
        model_name=result.model_name if result is not None else None,
        model_version=result.model_version if result is not None else None,
        abstained=bool(result.abstained) if result is not None else False,
        abstain_reason=result.abstain_reason if result is not None else None,
        findings=findings,
        summary=_summary(scan, result, findings),
        limitations=LIMITATIONS,
        changes=_change_lines(comparison, previous),
        red_flags=tuple(red_flag_reasons),
        questions=_questions(findings, comparison, previous, result),
        glossary={FINDING_LABELS[f]: GLOSSARY[f] for f in FINDINGS},
        notes=tuple(notes),
        image_png=image_png,
    )


# --------------------------------------------------------------------------- export


def _json_default(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def report_to_json(report: Report) -> str:
    """Serialise a report to indented JSON (the image is left out; ``has_image`` says if there was one).

    Args:
        report: The report.

    Returns:
        JSON text.
    """
    data = asdict(report)
    data.pop("image_png")
    data["has_image"] = report.image_png is not None
    return json.dumps(data, default=_json_default, indent=2, ensure_ascii=False)


#: Characters outside Latin-1 that appear in ordinary text, for the PDF's built-in fonts.
_LATIN1_FALLBACKS = str.maketrans(
    {
        "\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
        "\u2026": "...", "\u2265": ">=", "\u2264": "<=",
    }
)


def _pdf_text(text: str) -> str:
    # The PDF core fonts cover Latin-1 only; anything else becomes "?" rather than failing.
    return text.translate(_LATIN1_FALLBACKS).encode("latin-1", "replace").decode("latin-1")


class _ReportPDF(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(format="A4")
        self._footer_text = footer_text

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("Helvetica", "I", 7)
        self.multi_cell(0, 3.5, _pdf_text(f"{self._footer_text}  Page {self.page_no()}/{{nb}}"), align="C")


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 12)
    pdf.multi_cell(0, 7, _pdf_text(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)


def _paragraph(pdf: FPDF, text: str, bullet: bool = False) -> None:
    pdf.multi_cell(0, 5, _pdf_text(f"- {text}" if bullet else text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def report_to_pdf(report: Report) -> bytes:
    """Render a report as an A4 PDF.

    Args:
        report: The report.

    Returns:
        The PDF file's bytes.
    """
    pdf = _ReportPDF(report.disclaimer)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_title(_pdf_text(report.title))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 8, _pdf_text(report.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(
        0, 5,
        _pdf_text(
            f"Scan date {report.scan_date.isoformat()} - file {report.filename} - "
            f"generated {report.generated_at.strftime('%Y-%m-%d %H:%M %Z').strip()}"
        ),
        new_x="LMARGIN", new_y="NEXT",
    )
    pdf.set_font("Helvetica", "B", 10)
    pdf.multi_cell(0, 5, _pdf_text(report.disclaimer), border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)

    _heading(pdf, "Summary")
    for paragraph in report.summary:
        _paragraph(pdf, paragraph)
    if report.findings:
        _heading(pdf, "Scores")
        for line in report.findings:
            status = "at or above its level" if line.above_threshold else "below its level"
            _paragraph(
                pdf,
                f"{line.label}: {format_percent(line.probability)} ({status} of {format_percent(line.threshold)})",
                bullet=True,
            )
    if report.red_flags:
        _heading(pdf, "Points to raise")
        for reason in report.red_flags:
            _paragraph(pdf, reason, bullet=True)
    if report.changes:
        _heading(pdf, "Change since the previous scan")
        for line in report.changes:
            _paragraph(pdf, line, bullet=True)
    if report.image_png is not None:
        _heading(pdf, "Image (coloured areas: where the model looked most)")
        with Image.open(io.BytesIO(report.image_png)) as picture:
            width_mm = min(120.0, pdf.epw)
            height_mm = width_mm * picture.height / picture.width
            if pdf.get_y() + height_mm > pdf.h - 20:
                pdf.add_page()
            pdf.image(picture, x=pdf.l_margin, w=width_mm)
    if report.notes:
        _heading(pdf, "Clinician notes")
        marks = 0
        for note in report.notes:
            # Numbered like draw_annotations numbers the marks on the image.
            marks += bool(note.annotation)
            mark = f" (mark {marks})" if note.annotation else ""
            _paragraph(pdf, f"{note.created_at:%Y-%m-%d} {note.author}{mark}: {note.text}", bullet=True)
    _heading(pdf, "What the model cannot tell")
    for line in report.limitations:
        _paragraph(pdf, line, bullet=True)
    _heading(pdf, "Questions you could ask your clinician")
    for question in report.questions:
        _paragraph(pdf, question, bullet=True)
    _heading(pdf, "Glossary")
    for label, text in report.glossary.items():
        _paragraph(pdf, f"{label}: {text}")
    return bytes(pdf.output())
