"""Plain-language report of one scan, with its annotated image, as JSON (PDF: ``report_pdf``).

The report names the patient (their chosen display name), the scan (date and view, never the
uploaded file's name), explains what was checked, what the model found and what it cannot
tell, plots each finding across the patient's scans, gives a short glossary of the findings,
suggests questions for the clinician (drawn from the findings and their change since the
previous scan) and carries the decision-support disclaimer. The model's identity is a detail,
kept apart from the patient's sentences.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
from PIL import Image

from core.compare import HIGHER, LOWER, Comparison, compare_readings
from core.findings import DISCLAIMER, FINDING_LABELS, FINDINGS
from core.labels import format_day, view_words
from core.scan_reading import ScanReading, ScanStatus
from core.timeline import format_percent, format_version
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
        "A pattern of hazy patches towards the edges and lower parts of both lungs, as seen in "
        "pneumonia caused by the SARS-CoV-2 virus. The model scores other adult pneumonias as "
        "high, so it cannot tell COVID-19 from them; only a laboratory test confirms the virus."
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
        model_name: Model whose result the report reads (``None`` without one).
        model_version: Its version.
        status: The scan's reading status (``core.scan_reading.ScanStatus``), in its words.
        headline: The reading's one headline sentence.
        abstained: Whether the model declined to give a reliable answer.
        abstain_reason: Why, in plain words.
        findings: Scores per finding, as the reading shows them (none without numbers).
        summary: Plain-language paragraphs.
        limitations: What the model cannot tell.
        changes: Sentences on change since the previous scan.
        red_flags: Reasons this scan is flagged (see ``core.timeline.red_flags``).
        questions: Suggested questions for the clinician.
        glossary: Plain-language name -> explanation, for every finding.
        notes: Clinicians' notes on this scan.
        disclaimer: Decision-support disclaimer.
        image: The annotated image as displayed, RGB ``uint8``, at most
            :data:`_MAX_IMAGE_SIDE` pixels a side (not part of the JSON export).
        image_note: One sentence printed with the image, e.g. that the enhancement saved with
            the scan could not be reproduced (``core.enhance.SavedView.caption``).
        timeline: Every score the Timeline plots by default, of the patient's scans up to this
            one, oldest first.

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
    status: str
    headline: str
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
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
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


def _report_image(rgb: np.ndarray) -> np.ndarray:
    image = Image.fromarray(rgb)
    image.thumbnail((_MAX_IMAGE_SIDE, _MAX_IMAGE_SIDE))
    return np.asarray(image)


# --------------------------------------------------------------------------- content


def _findings_of(reading: ScanReading) -> tuple[ReportFinding, ...]:
    return tuple(
        ReportFinding(item.finding, item.label, item.value, item.threshold, item.flagged, item.note)
        for item in reading.findings
    )


def _summary(reading: ScanReading) -> tuple[str, ...]:
    looked_for = ", ".join(in_sentence(label) for label in FINDING_LABELS.values())
    when = f"your chest X-ray of {format_day(reading.scan_date)}, {view_words(reading.view)}"
    if not reading.has_numbers:
        return (f"This report is about {when}. {reading.reason or reading.headline}",)
    paragraphs = [
        f"This report is about {when}. A computer model looked at the image "
        f"for signs of {looked_for}.",
    ]
    if reading.status is ScanStatus.VIEW_UNCERTAIN and reading.reason:
        paragraphs.append(reading.reason)
    above = [item for item in reading.findings if item.flagged]
    if above:
        listed = "; ".join(
            f"{in_sentence(item.label)} {format_percent(item.value)} "
            f"(its level is {format_percent(item.threshold)})"
            for item in above
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
    if reading.explanation:
        paragraphs.append(reading.explanation)
    return tuple(paragraphs)


def _change_lines(comparison: Comparison | None, previous: ScanReading | None) -> tuple[str, ...]:
    if comparison is None or previous is None:
        return ()
    if not comparison.comparable:
        return (comparison.message,)
    since = f"since the scan of {format_day(previous.scan_date)}"
    return tuple(f"{change.sentence[:-1]} {since}." for change in comparison.changes)


def _questions(
    findings: Sequence[ReportFinding],
    comparison: Comparison | None,
    previous: ScanReading | None,
    reading: ScanReading,
) -> tuple[str, ...]:
    questions: list[str] = []
    if reading.status is ScanStatus.UNSURE:
        questions.append(
            "The model could not read this image reliably. Should the X-ray be repeated?"
        )
    for line in findings:
        if line.above_threshold:
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
                if change.greyed:
                    continue
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


#: Said with the image when a heatmap is drawn on it (and only then).
HEATMAP_CAPTION = (
    "Coloured areas show where the image most drove the model's score; they are not a diagnosis."
)


def build_report(
    reading: ScanReading,
    *,
    history: Sequence[ScanReading] = (),
    filename: str = "",
    image: np.ndarray | None = None,
    image_note: str | None = None,
    notes: Sequence[ReportNote] = (),
    margin: float = 0.10,
    generated_at: datetime | None = None,
    patient_name: str | None = None,
    zone: str | None = None,
) -> Report:
    """Assemble the report of one scan from its reading.

    Args:
        reading: The scan's reading (``core.scan_reading``): status, headline, the numbers
            shown and their flags.
        history: The patient's readings, for the change since the last comparable film and the
            timeline chart (films after this one are left out: the report describes the record
            as of this scan).
        filename: The uploaded file's name (JSON export only).
        image: The image as displayed (RGB ``uint8``: the saved enhancement, the heatmap if
            asked, the clinicians' marks; ``services.records.display_image``), if available.
        image_note: What the image shows, printed with it (a heatmap is explained only when
            drawn).
        notes: Clinicians' notes.
        margin: Change margin for the comparison with the previous film.
        generated_at: Timestamp to print (defaults to now).
        patient_name: The patient's display name, printed on the report (``None``: not known).
        zone: The reader's IANA time zone, for printed times.

    Returns:
        The :class:`Report`.
    """
    findings = _findings_of(reading)
    previous = previous_comparable(history, reading)
    comparison = compare_readings(previous, reading, margin=margin) if previous else None
    return Report(
        title="Chest X-ray report (decision support)",
        patient_name=patient_name,
        scan_id=reading.scan_id,
        scan_date=reading.scan_date,
        view=reading.view,
        filename=filename,
        generated_at=generated_at or datetime.now(UTC),
        zone=zone,
        model_name=reading.model_name if reading.has_numbers else None,
        model_version=reading.model_version if reading.has_numbers else None,
        status=reading.status_words,
        headline=reading.headline,
        abstained=reading.status is ScanStatus.UNSURE,
        abstain_reason=reading.reason if reading.status is ScanStatus.UNSURE else None,
        findings=findings,
        summary=_summary(reading),
        limitations=LIMITATIONS,
        changes=_change_lines(comparison, previous),
        red_flags=reading.flags,
        questions=_questions(findings, comparison, previous, reading),
        glossary={FINDING_LABELS[f]: GLOSSARY[f] for f in FINDINGS},
        notes=tuple(notes),
        image=None if image is None else _report_image(image),
        image_note=image_note,
        timeline=_timeline(history, reading),
    )


def previous_comparable(history: Sequence[ScanReading], reading: ScanReading) -> ScanReading | None:
    """The latest comparable film of an earlier day of the same projection, if any.

    Args:
        history: The patient's readings.
        reading: The film to find a baseline for.

    Returns:
        The baseline reading, or None (also when ``reading`` is not comparable itself).
    """
    if not reading.has_numbers:
        return None
    earlier = [
        other
        for other in history
        if other.comparable and other.view is reading.view and other.scan_date < reading.scan_date
    ]
    return max(earlier, key=lambda r: (r.scan_date, r.scan_id)) if earlier else None


def _timeline(history: Sequence[ScanReading], reading: ScanReading) -> tuple[TimelinePoint, ...]:
    upto = sorted(
        (r for r in history if (r.scan_date, r.scan_id) <= (reading.scan_date, reading.scan_id)),
        key=lambda r: (r.scan_date, r.scan_id),
    )
    return tuple(
        TimelinePoint(r.scan_id, r.scan_date, item.finding, item.value, item.threshold)
        for r in upto
        for item in r.findings
        if item.plotted
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
    data = asdict(replace(report, image=None))
    data.pop("image")
    data["has_image"] = report.image is not None
    return json.dumps(data, default=_json_default, indent=2, ensure_ascii=False)
