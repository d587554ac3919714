"""Plain-language report of one scan, with its annotated image, as JSON (PDF: ``report_pdf``).

The report names the patient (their chosen display name), the scan (date and view, never the
uploaded file's name), explains what was checked, what the model found and what it cannot
tell, plots each finding across the patient's scans, gives a short glossary of the findings,
suggests questions for the clinician (drawn from the findings and their change since the
previous scan) and carries the decision-support disclaimer. The model's identity is a detail,
kept apart from the patient's sentences.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from PIL import Image

from core.compare import HIGHER, LOWER, Comparison, compare_scans
from core.findings import DISCLAIMER, FINDING_LABELS, FINDINGS, is_flagged
from core.labels import format_day, view_words
from core.overlay import draw_annotations, overlay_heatmap
from core.reading import ResultReading
from core.timeline import (
    ResultLike,
    ScanLike,
    format_percent,
    format_version,
    result_threshold,
    select_result,
    timeline_frame,
)
from core.views import View
from core.words import in_sentence

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
        "Pneumonia caused by a virus, such as influenza. It often shows as a more spread-out "
        "pattern in both lungs; antibiotics do not treat viruses."
    ),
    "covid19": (
        "Pneumonia caused by the SARS-CoV-2 virus. On an X-ray it often shows as hazy patches "
        "towards the edges and lower parts of both lungs; only a laboratory test confirms the "
        "virus."
    ),
}

LIMITATIONS: tuple[str, ...] = (
    (
        "The model sees only this image: it knows nothing of your symptoms, history, examination "
        "or tests."
    ),
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


@dataclass(frozen=True)
class ReportFinding:
    """One finding's line in the report.

    Attributes:
        finding: Finding name.
        label: Plain-language name.
        probability: The model's score in [0, 1].
        threshold: Decision threshold of the model version that scored it.
        above_threshold: Whether the score reaches the threshold.
        note: Set when the finding was learned from other patients than this one (children
            or adults, ``core.reading``): one plain sentence; the score is then shown greyed
            and counts for no summary line or question.
    """

    finding: str
    label: str
    probability: float
    threshold: float
    above_threshold: bool
    note: str | None = None


@dataclass(frozen=True)
class ReportNote:
    """A clinician's note shown in the report.

    Attributes:
        author: Who wrote it.
        created_at: When.
        text: The note.
        annotation: The marked point or box, if any (see ``core.annotations``).
    """

    author: str
    created_at: datetime
    text: str
    annotation: Mapping[str, float] | None = None


@dataclass(frozen=True)
class TimelinePoint:
    """One finding's score on one scan, for the report's timeline chart.

    Attributes:
        scan_id: The scan.
        scan_date: When it was taken.
        finding: Finding name.
        probability: The model's score in [0, 1].
        threshold: The level for a closer look.
    """

    scan_id: int
    scan_date: date
    finding: str
    probability: float
    threshold: float


@dataclass(frozen=True)
class Report:
    """Everything shown in a scan's report.

    Attributes:
        title: Heading.
        patient_name: The name the patient chose for reports; ``None`` when not known.
        scan_id: The scan.
        scan_date: Date the X-ray was taken.
        view: The film's projection.
        filename: Uploaded file name (in the JSON export only; reports name scans by date
            and view).
        generated_at: When the report was built (aware; printed in ``zone``).
        zone: The reader's IANA time zone for printed times (``None``: UTC, named so).
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
        image_note: One sentence printed with the image, e.g. that the enhancement saved with
            the scan could not be reproduced (``core.enhance.SavedView.caption``).
        timeline: Every plotted score of the patient's scans up to this one, oldest first.
    """

    title: str
    patient_name: str | None
    scan_id: int
    scan_date: date
    view: View
    filename: str
    generated_at: datetime
    zone: str | None
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
    image_note: str | None = None
    timeline: tuple[TimelinePoint, ...] = ()

    @property
    def scan_words(self) -> str:
        """The scan in words: ``"1 Apr 2026, frontal (PA, standing)"``."""
        return f"{format_day(self.scan_date)}, {view_words(self.view)}"

    @property
    def model_words(self) -> str | None:
        """The model's identity, for a details section: ``"cxr-densenet v1"``."""
        if self.model_name is None:
            return None
        return f"{self.model_name} {format_version(self.model_version or '')}"


# --------------------------------------------------------------------------- images


def _png_bytes(rgb: np.ndarray) -> bytes:
    image = Image.fromarray(rgb)
    image.thumbnail((_MAX_IMAGE_SIDE, _MAX_IMAGE_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# --------------------------------------------------------------------------- content


def _findings_of(
    result: ResultLike, thresholds: Mapping[str, float] | None, reading: ResultReading | None
) -> tuple[ReportFinding, ...]:
    notes = {item.finding: item.note for item in reading.findings} if reading else {}
    lines = []
    for finding in FINDINGS:
        if finding in result.probabilities:
            value = float(result.probabilities[finding])
            level = result_threshold(result, finding, thresholds)
            flagged = is_flagged(value, level)
            lines.append(
                ReportFinding(
                    finding, FINDING_LABELS[finding], value, level, flagged, notes.get(finding)
                )
            )
    return tuple(lines)


def _summary(
    scan: ScanLike, result: ResultLike | None, findings: Sequence[ReportFinding]
) -> tuple[str, ...]:
    looked_for = ", ".join(in_sentence(label) for label in FINDING_LABELS.values())
    when = f"your chest X-ray of {format_day(scan.scan_date)}, {view_words(scan.view)}"
    if result is None:
        return (
            f"This report is about {when}. It has not been checked by the model yet, "
            "so there are no scores.",
        )
    paragraphs = [
        f"This report is about {when}. A computer model looked at the image "
        f"for signs of {looked_for}.",
    ]
    if result.abstained:
        reason = f" ({result.abstain_reason.rstrip('.')})" if result.abstain_reason else ""
        paragraphs.append(
            f"The model was not confident that this image suits it{reason}, "
            "so its scores should not be relied on."
        )
    above = [f for f in findings if f.above_threshold and f.note is None]
    if above:
        listed = "; ".join(
            f"{in_sentence(f.label)} {format_percent(f.probability)} "
            f"(its level is {format_percent(f.threshold)})"
            for f in above
        )
        paragraphs.append(
            "The model's score reached the level at which it suggests a closer look for: "
            f"{listed}. "
            "This is a reason to talk to a clinician, not a diagnosis."
        )
    else:
        paragraphs.append(
            "None of the model's scores reached the level at which it suggests a closer look. "
            "This does not rule anything out: discuss the result with a clinician, "
            "especially if you feel unwell."
        )
    return tuple(paragraphs)


def _change_lines(comparison: Comparison | None, previous: ScanLike | None) -> tuple[str, ...]:
    if comparison is None or previous is None:
        return ()
    if not comparison.comparable:
        return (comparison.message,)
    since = f"since the scan of {format_day(previous.scan_date)}"
    return tuple(f"{change.sentence[:-1]} {since}." for change in comparison.changes)


def _questions(
    findings: Sequence[ReportFinding],
    comparison: Comparison | None,
    previous: ScanLike | None,
    result: ResultLike | None,
) -> tuple[str, ...]:
    questions: list[str] = []
    if result is not None and result.abstained:
        questions.append(
            "The model could not read this image reliably. Should the X-ray be repeated?"
        )
    for line in findings:
        if line.above_threshold and line.note is None:
            questions.append(
                f"The model scored {in_sentence(line.label)} at "
                f"{format_percent(line.probability)}. "
                f"Do you see signs of {in_sentence(line.label)} on my X-ray, "
                "and do I need tests or treatment?"
            )
    if comparison is not None and previous is not None:
        if comparison.comparable:
            since = format_day(previous.scan_date)
            for change in comparison.changes:
                if change.verdict == HIGHER:
                    questions.append(
                        f"My {in_sentence(change.label)} score rose from "
                        f"{format_percent(change.before)} to {format_percent(change.after)} "
                        f"since {since}. Is this a real change, and what should we do next?"
                    )
                elif change.verdict == LOWER:
                    questions.append(
                        f"My {in_sentence(change.label)} score fell from "
                        f"{format_percent(change.before)} to {format_percent(change.after)} "
                        f"since {since}. Does this match how I am recovering?"
                    )
        else:
            questions.append(
                "My scans were scored by different model versions. "
                "Should the earlier one be re-scored before we compare them?"
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
    image_note: str | None = None,
    heatmap: np.ndarray | None = None,
    notes: Sequence[ReportNote] = (),
    margin: float = 0.10,
    generated_at: datetime | None = None,
    patient_name: str | None = None,
    zone: str | None = None,
    history: Sequence[ScanLike] = (),
    reading: ResultReading | None = None,
) -> Report:
    """Assemble the report of one scan.

    Args:
        scan: The scan (``ScanSummary``); its result is chosen as on the timeline.
        current_version: Version of the model in use now, if known.
        thresholds: Fallback thresholds (see ``core.timeline.result_threshold``).
        previous: The patient's scan before this one, to describe the change.
        red_flag_reasons: This scan's entry of ``core.timeline.red_flags``.
        image: Grayscale pixels in [0, 1] to embed, if available (shown as saved, see
            ``core.enhance.enhance_as_saved``).
        image_note: Sentence printed with the image (that view's caption).
        heatmap: Model attention map for ``image``, if available.
        notes: Clinicians' notes; their marks are drawn on the image.
        margin: Change margin for the comparison with ``previous``.
        generated_at: Timestamp to print (defaults to now).
        patient_name: The patient's display name, printed on the report (``None``: not known).
        zone: The reader's IANA time zone, for printed times.
        history: The patient's scans, for the timeline chart (scans after this one are left
            out: the report describes the patient's record as of this scan).
        reading: The shown result read for its patient (``services.validity.reading_for``):
            findings learned from other patients get their sentence, and the summary says
            why the numbers differ; ``None`` when not known.

    Returns:
        The :class:`Report`.
    """
    result = select_result(scan.results, current_version)
    findings = _findings_of(result, thresholds, reading) if result is not None else ()
    comparison = (
        compare_scans(previous, scan, margin=margin, current_version=current_version)
        if previous is not None
        else None
    )
    image_png = None
    if image is not None:
        rgb = overlay_heatmap(image, heatmap)
        marks = [note.annotation for note in notes if note.annotation]
        image_png = _png_bytes(draw_annotations(rgb, marks) if marks else rgb)
    return Report(
        title="Chest X-ray report (decision support)",
        patient_name=patient_name,
        scan_id=scan.id,
        scan_date=scan.scan_date,
        view=View(scan.view),
        filename=scan.filename,
        generated_at=generated_at or datetime.now(UTC),
        zone=zone,
        model_name=result.model_name if result is not None else None,
        model_version=result.model_version if result is not None else None,
        abstained=bool(result.abstained) if result is not None else False,
        abstain_reason=result.abstain_reason if result is not None else None,
        findings=findings,
        summary=_summary(scan, result, findings)
        + ((reading.explanation,) if reading is not None else ()),
        limitations=LIMITATIONS,
        changes=_change_lines(comparison, previous),
        red_flags=tuple(red_flag_reasons),
        questions=_questions(findings, comparison, previous, result),
        glossary={FINDING_LABELS[f]: GLOSSARY[f] for f in FINDINGS},
        notes=tuple(notes),
        image_png=image_png,
        image_note=image_note,
        timeline=_timeline(history, scan, current_version),
    )


def _timeline(
    history: Sequence[ScanLike], scan: ScanLike, current_version: str | None
) -> tuple[TimelinePoint, ...]:
    upto = [s for s in history if (s.scan_date, s.id) <= (scan.scan_date, scan.id)]
    frame = timeline_frame(upto, current_version)
    return tuple(
        TimelinePoint(
            int(row["scan_id"]),
            row["scan_date"].date(),
            str(row["finding"]),
            float(row["probability"]),
            float(row["threshold"]),
        )
        for row in frame.to_dict("records")
    )


# --------------------------------------------------------------------------- export


def _json_default(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def report_to_json(report: Report) -> str:
    """Serialise a report to indented JSON.

    The image is left out; ``has_image`` says whether there was one.

    Args:
        report: The report.

    Returns:
        JSON text.
    """
    data = asdict(report)
    data.pop("image_png")
    data["has_image"] = report.image_png is not None
    return json.dumps(data, default=_json_default, indent=2, ensure_ascii=False)
