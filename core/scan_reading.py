"""What one scan says, decided once, for every page, export and report.

A scan's reading depends on its view and any doubt about it, whether the model abstained,
which model version scored it, the patient's population and the model's validity table,
the thresholds, and the patient's earlier films of the same projection. Every surface (upload,
My scans, Timeline, Compare, Report and its PDF, teleconsult, the command line's export)
renders the :class:`ScanReading` built here and decides none of this on its own, so a film
tells one story everywhere.

The rules, each in one place:

- A side or unknown view is never scored: no number anywhere, its earlier results only in the
  details. Changing the view re-reads the scan.
- A result where the model was unsure has no number anywhere (not plotted, not flagged), only
  its reason.
- Only the current model's result is read; a frontal film scored only by an older version
  awaits re-scoring (its older numbers stay in the details), so a chart never mixes scales.
- A frontal film whose view check doubted it and whose view the patient confirmed is read as
  "view uncertain": its numbers are shown with that note, it raises no rise flag, is no
  baseline for another film's rise, and is never a default of Compare.
- A finding learned from other patients than this one is greyed: shown, never flagged, not
  plotted by default (``core.reading``).
- The headline names the flagged findings with their values and levels, or says none is above
  its level; it never calls a finding "strongest".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from typing import Protocol

from core.labels import format_day, scan_labels
from core.reading import VerdictLike, read_result
from core.views import (
    FRONTAL_VIEWS,
    NOT_SCORED_SENTENCE,
    UNKNOWN_NOT_SCORED_SENTENCE,
    VIEW_LABELS,
    View,
    is_frontal,
)
from core.words import in_sentence, plural

#: Default rise, in absolute probability, since the previous comparable film that raises a flag.
DEFAULT_RISE_MARGIN = 0.15

#: Said of a film whose view check doubted "frontal" and whose view the patient confirmed.
VIEW_UNCERTAIN_SENTENCE = (
    "The image did not look like a frontal film, and its view was confirmed by hand: read its "
    "numbers with care; it raises no rise flag and is not compared by default."
)

#: Said of a frontal film scored only by an older model version.
AWAITING_RESCORE_SENTENCE = (
    "This film was scored by an older model version; re-score it (Timeline) to see the current "
    "model's reading. The older numbers are kept in the details."
)

#: Said of a frontal film that no model has scored yet.
NOT_YET_SCORED_SENTENCE = "This film has not been scored by the model yet."

#: Headline of a scored film with no finding at or above its level.
NONE_ABOVE_SENTENCE = "No finding is above the level at which the model suggests a closer look."


class ScanStatus(StrEnum):
    """What became of a scan, the first thing every surface says about it."""

    SCORED = "scored"
    VIEW_UNCERTAIN = "view uncertain"
    NOT_SCORED_VIEW = "not scored: view"
    REFUSED = "refused: not a chest X-ray"
    UNSURE = "model unsure"
    AWAITING_RESCORE = "awaiting re-score"


#: A few words per status, for table cells and export.
STATUS_WORDS: dict[ScanStatus, str] = {
    ScanStatus.SCORED: "Scored",
    ScanStatus.VIEW_UNCERTAIN: "Scored, view uncertain",
    ScanStatus.NOT_SCORED_VIEW: "Not scored (view)",
    ScanStatus.REFUSED: "Not a chest X-ray",
    ScanStatus.UNSURE: "Model unsure",
    ScanStatus.AWAITING_RESCORE: "Awaiting re-score",
}


class ScoredLike(Protocol):
    """The fields of a model result read here (``storage.results.ResultIn`` before saving)."""

    @property
    def probabilities(self) -> Mapping[str, float]: ...

    @property
    def thresholds(self) -> Mapping[str, float]: ...

    @property
    def model_name(self) -> str: ...

    @property
    def model_version(self) -> str: ...

    @property
    def checkpoint_sha256(self) -> str: ...

    @property
    def abstained(self) -> bool: ...

    @property
    def abstain_reason(self) -> str | None: ...

    @property
    def population(self) -> str | None: ...


class ResultLike(ScoredLike, Protocol):
    """A stored result (``storage.results.ResultRecord``)."""

    @property
    def id(self) -> int: ...


class ScanLike(Protocol):
    """The fields of a stored scan (``storage.scans.ScanSummary``) read here."""

    @property
    def id(self) -> int: ...

    @property
    def scan_date(self) -> date: ...

    @property
    def view(self) -> View: ...

    @property
    def view_doubt(self) -> str | None: ...

    @property
    def results(self) -> Sequence[ResultLike]: ...


#: The model's validity table for a checkpoint SHA-256, keyed by ``(finding, population)``.
ValidityOf = Callable[[str], Mapping[tuple[str, str], VerdictLike]]
#: The patient's population at a scan's date, from the result's stored population (or None).
PopulationOf = Callable[[str | None, date], str]


@dataclass(frozen=True)
class FindingShown:
    """One finding of one scan as every surface shows it.

    Attributes:
        finding: One of ``core.findings.FINDINGS``.
        label: Its plain name.
        value: The probability shown.
        threshold: The level at which the model suggests a closer look.
        flagged: At or above that level and valid for the patient (so it counts).
        valid: Shown to work for the patient's population; None when the age is not known.
        learned_from: Whom it was learned from, in words (None: not checked on test films).
        note: One sentence when the number says little about this patient (greyed).
        plotted: Drawn on the timeline by default (never when greyed).
    """

    finding: str
    label: str
    value: float
    threshold: float
    flagged: bool
    valid: bool | None
    learned_from: str | None
    note: str | None
    plotted: bool

    @property
    def greyed(self) -> bool:
        """Shown greyed: learned from other patients than this one."""
        return self.valid is False


@dataclass(frozen=True)
class ScanReading:
    """The one reading of one scan.

    Attributes:
        scan_id: The scan (0 for a file not yet saved).
        scan_date: When the X-ray was taken.
        view: Its projection.
        label: Its name, e.g. ``"3 Nov 2025, frontal (PA, standing)"``.
        status: What became of it.
        headline: One sentence: the flagged findings with their values and levels, or that none
            is above its level, or why there is no number.
        reason: Why the scan has no number (side view, model unsure, older model ...) or how its
            numbers must be read (view uncertain); None for a plainly scored film.
        findings: Per finding the value shown; empty when the scan has no number.
        flags: Sentences: each valid finding at or above its level, each rise since the last
            comparable film.
        explanation: Why one number holds for this patient and another does not; None without
            numbers.
        population: The patient's population at the scan's date.
        model_name: The model whose result is read (None without one).
        model_version: Its version.
        checkpoint_sha256: Its checkpoint's SHA-256.
        result_id: The stored result read (None without one).
        same_day: A sentence naming the other films of the same day, else None.
    """

    scan_id: int
    scan_date: date
    view: View
    label: str
    status: ScanStatus
    headline: str
    reason: str | None = None
    findings: tuple[FindingShown, ...] = ()
    flags: tuple[str, ...] = ()
    explanation: str | None = None
    population: str = "unknown"
    model_name: str | None = None
    model_version: str | None = None
    checkpoint_sha256: str | None = None
    result_id: int | None = None
    same_day: str | None = None

    @property
    def has_numbers(self) -> bool:
        """Whether any value is shown for this scan."""
        return bool(self.findings)

    @property
    def plotted(self) -> bool:
        """Whether the scan appears on the timeline by default."""
        return any(item.plotted for item in self.findings)

    @property
    def needs_attention(self) -> bool:
        """Whether the scan raises a flag."""
        return bool(self.flags)

    @property
    def comparable(self) -> bool:
        """Whether the scan may open Compare or serve as the baseline of a rise."""
        return self.status is ScanStatus.SCORED and self.view in FRONTAL_VIEWS

    @property
    def status_words(self) -> str:
        """A few words for a table cell."""
        return STATUS_WORDS[self.status]

    def value_of(self, finding: str) -> float | None:
        """The value shown for ``finding``, or None."""
        return next((item.value for item in self.findings if item.finding == finding), None)

    def finding(self, finding: str) -> FindingShown | None:
        """The finding as shown, or None when the scan has no number for it."""
        return next((item for item in self.findings if item.finding == finding), None)


def headline_for(findings: Sequence[FindingShown]) -> str:
    """The headline of a scored film: the flagged findings with values and levels, or none.

    Args:
        findings: The findings shown.

    Returns:
        One sentence, e.g. ``"Above its level: pneumonia 45% (level 30%)."``.
    """
    flagged = [item for item in findings if item.flagged]
    if not flagged:
        return NONE_ABOVE_SENTENCE
    parts = [
        f"{in_sentence(item.label)} {item.value:.0%} (level {item.threshold:.0%})"
        for item in sorted(flagged, key=lambda item: -item.value)
    ]
    lead = "Above its level" if len(parts) == 1 else "Above their levels"
    return f"{lead}: {_and_list(parts)}."


def _and_list(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def _findings_shown(
    result: ScoredLike, population: str, validity: Mapping[tuple[str, str], VerdictLike]
) -> tuple[tuple[FindingShown, ...], str]:
    reading = read_result(result.probabilities, result.thresholds, population, validity)
    shown = tuple(
        FindingShown(
            finding=item.finding,
            label=item.label,
            value=item.probability,
            threshold=item.threshold,
            flagged=item.flagged and not item.greyed,
            valid=item.valid,
            learned_from=item.learned_from,
            note=item.note,
            plotted=not item.greyed,
        )
        for item in reading.findings
    )
    return shown, reading.explanation


def _current_result(results: Sequence[ResultLike], version: str | None) -> ResultLike | None:
    if not results:
        return None
    if version is None:
        return results[-1]
    same = [result for result in results if result.model_version == version]
    return same[-1] if same else None


def _level_flags(findings: Sequence[FindingShown]) -> list[str]:
    return [
        f"{item.label} is at {item.value:.0%}, at or above its level of {item.threshold:.0%}."
        for item in findings
        if item.flagged
    ]


def _rise_flags(
    findings: Sequence[FindingShown], baseline: ScanReading, view: View, margin: float
) -> list[str]:
    flags = []
    for item in findings:
        before = baseline.finding(item.finding)
        if item.greyed or before is None:
            continue
        # Rounded so that 0.40 - 0.25 counts as 0.15, not 0.1499999.
        if round(item.value - before.value, 9) > margin:
            flags.append(
                f"{item.label} rose from {before.value:.0%} to {item.value:.0%} since the "
                f"{view.value} film of {format_day(baseline.scan_date)}."
            )
    return flags


def read_scans(
    scans: Iterable[ScanLike],
    *,
    current_version: str | None,
    validity_of: ValidityOf,
    population_of: PopulationOf,
    margin: float = DEFAULT_RISE_MARGIN,
) -> list[ScanReading]:
    """Read every scan of one patient, oldest first.

    Args:
        scans: The patient's scans, any order.
        current_version: The model in use now; None reads each scan's latest result (no model
            is loaded, so none can re-score).
        validity_of: The validity table of a checkpoint, by its SHA-256.
        population_of: The patient's population at a scan's date.
        margin: Rise in absolute probability that raises a flag (strictly greater).

    Returns:
        One :class:`ScanReading` per scan, oldest first (by date, then id).

    Raises:
        ValueError: ``margin`` is not in (0, 1).
    """
    if not 0 < margin < 1:
        raise ValueError("The rise margin must be between 0 and 1.")
    ordered = sorted(scans, key=lambda s: (s.scan_date, s.id))
    labels = scan_labels(ordered)
    by_day: dict[date, list[ScanLike]] = {}
    for scan in ordered:
        by_day.setdefault(scan.scan_date, []).append(scan)
    readings: list[ScanReading] = []
    # The latest comparable reading per projection from earlier days, and from the current day.
    earlier_days: dict[View, ScanReading] = {}
    this_day: dict[View, ScanReading] = {}
    day: date | None = None
    for scan in ordered:
        if scan.scan_date != day:
            earlier_days.update(this_day)
            this_day, day = {}, scan.scan_date
        partners = [other for other in by_day[scan.scan_date] if other.id != scan.id]
        same_day = (
            f"Taken the same day as {plural(len(partners), 'other film')}: "
            + "; ".join(VIEW_LABELS[other.view] for other in partners)
            + "."
            if partners
            else None
        )
        reading = _read_one(
            scan,
            labels[scan.id],
            current_version,
            validity_of,
            population_of,
            same_day,
            earlier_days.get(scan.view),
            margin,
        )
        readings.append(reading)
        if reading.comparable:
            this_day[scan.view] = reading
    return readings


def _read_one(
    scan: ScanLike,
    label: str,
    current_version: str | None,
    validity_of: ValidityOf,
    population_of: PopulationOf,
    same_day: str | None,
    baseline: ScanReading | None,
    margin: float,
) -> ScanReading:
    view = View(scan.view)
    result = _current_result(scan.results, current_version) if is_frontal(view) else None
    if result is not None:
        return read_result_of(
            result,
            validity_of(result.checkpoint_sha256),
            population_of(result.population, scan.scan_date),
            scan_id=scan.id,
            scan_date=scan.scan_date,
            view=view,
            label=label,
            view_doubt=scan.view_doubt,
            same_day=same_day,
            baseline=baseline,
            margin=margin,
            result_id=result.id,
        )
    if not is_frontal(view):
        status = ScanStatus.NOT_SCORED_VIEW
        sentence = NOT_SCORED_SENTENCE if view is View.LATERAL else UNKNOWN_NOT_SCORED_SENTENCE
    else:
        status = ScanStatus.AWAITING_RESCORE
        sentence = AWAITING_RESCORE_SENTENCE if scan.results else NOT_YET_SCORED_SENTENCE
    return ScanReading(
        scan_id=scan.id,
        scan_date=scan.scan_date,
        view=view,
        label=label,
        status=status,
        headline=sentence,
        reason=sentence,
        population=population_of(None, scan.scan_date),
        same_day=same_day,
    )


def read_result_of(
    result: ScoredLike,
    validity: Mapping[tuple[str, str], VerdictLike],
    population: str,
    *,
    scan_id: int,
    scan_date: date,
    view: View,
    label: str,
    view_doubt: str | None = None,
    same_day: str | None = None,
    baseline: ScanReading | None = None,
    margin: float = DEFAULT_RISE_MARGIN,
    result_id: int | None = None,
) -> ScanReading:
    """Read one frontal film's result (also for a file not yet saved, on the upload page).

    Args:
        result: The result read (the current model's).
        validity: The validity table of the model that made it.
        population: The patient's population at the scan's date.
        scan_id: The scan (0 before it is saved).
        scan_date: When the X-ray was taken.
        view: Its projection (frontal).
        label: Its name.
        view_doubt: The view check's warning, when the patient confirmed a doubtful view.
        same_day: The same-day sentence, if any.
        baseline: The latest comparable reading of an earlier day of the same projection.
        margin: Rise that raises a flag.
        result_id: The stored result's id (None before saving).

    Returns:
        The reading: model unsure (no numbers), view uncertain, or scored.
    """
    reason = result.abstain_reason or "The model was unsure about this image."
    base = ScanReading(
        scan_id=scan_id,
        scan_date=scan_date,
        view=view,
        label=label,
        status=ScanStatus.UNSURE,
        headline=f"No result is shown for this film: {_lower_first(reason)}",
        reason=reason,
        population=population,
        model_name=result.model_name,
        model_version=result.model_version,
        checkpoint_sha256=result.checkpoint_sha256,
        result_id=result_id,
        same_day=same_day,
    )
    if result.abstained:
        return base
    findings, explanation = _findings_shown(result, population, validity)
    flags = _level_flags(findings)
    headline = headline_for(findings)
    if view_doubt is not None:
        return replace(
            base,
            status=ScanStatus.VIEW_UNCERTAIN,
            headline=f"View uncertain. {headline}",
            reason=VIEW_UNCERTAIN_SENTENCE,
            findings=findings,
            flags=tuple(flags),
            explanation=explanation,
        )
    if baseline is not None and baseline.model_version == result.model_version:
        flags += _rise_flags(findings, baseline, view, margin)
    return replace(
        base,
        status=ScanStatus.SCORED,
        headline=headline,
        reason=None,
        findings=findings,
        flags=tuple(flags),
        explanation=explanation,
    )


def refused_reading(reason: str, *, scan_date: date, view: View, label: str) -> ScanReading:
    """The reading of a file that is not a chest radiograph (never saved as one).

    Args:
        reason: Why, in one sentence.
        scan_date: The date it would have had.
        view: The view it would have had.
        label: Its name (the file name before saving).

    Returns:
        A reading with status ``REFUSED`` and no numbers.
    """
    return ScanReading(
        scan_id=0,
        scan_date=scan_date,
        view=view,
        label=label,
        status=ScanStatus.REFUSED,
        headline=reason,
        reason=reason,
    )


def _lower_first(sentence: str) -> str:
    # "This image ..." continues a headline; an acronym at the start keeps its capitals.
    if len(sentence) > 1 and sentence[1].islower():
        return sentence[0].lower() + sentence[1:]
    return sentence


def attention_summary(readings: Sequence[ScanReading]) -> str | None:
    """One sentence for a record with flags, instead of one box per film.

    Args:
        readings: The patient's readings.

    Returns:
        E.g. ``"3 of 9 scored films need attention: pneumonia is above its level on 3."``;
        None when no film raises a flag.
    """
    flagged = [reading for reading in readings if reading.needs_attention]
    if not flagged:
        return None
    scored = [reading for reading in readings if reading.has_numbers]
    counts: dict[str, int] = {}
    for reading in flagged:
        for item in reading.findings:
            if item.flagged:
                counts[item.label] = counts.get(item.label, 0) + 1
    above = [
        f"{in_sentence(label)} on {count}"
        for label, count in sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    ]
    verb = "needs" if len(flagged) == 1 else "need"
    sentence = (
        f"{len(flagged)} of {plural(len(scored), 'scored film')} {verb} attention "
        "(a finding at or above its level, or a quick rise)"
    )
    if above:
        sentence += f"; above the level: {_and_list(above)}"
    return sentence + "; discuss them with a clinician (the reasons are in the table)."


def latest_scored_frontal(readings: Sequence[ScanReading]) -> ScanReading | None:
    """The film a report opens on: the latest one with numbers, else the latest film.

    Args:
        readings: The patient's readings, oldest first.

    Returns:
        The reading, or None when there are none.
    """
    with_numbers = [reading for reading in readings if reading.has_numbers]
    if with_numbers:
        return with_numbers[-1]
    return readings[-1] if readings else None


def default_compare_pair(readings: Sequence[ScanReading]) -> tuple[int, int] | None:
    """The pair Compare opens on: the two latest comparable films of one projection.

    The earlier film is the latest one of an earlier day when there is one (a same-day repeat
    tells nothing about change). Films of a doubtful view, not scored, or scored by another
    model version are never a default.

    Args:
        readings: The patient's readings, oldest first.

    Returns:
        ``(earlier id, later id)``, or None when no projection has two comparable films.
    """
    best: tuple[int, int] | None = None
    best_key: tuple[date, int] | None = None
    for view in FRONTAL_VIEWS:
        films = [r for r in readings if r.comparable and r.view is view]
        if len(films) < 2:
            continue
        later = films[-1]
        earlier_days = [r for r in films[:-1] if r.scan_date < later.scan_date]
        earlier = earlier_days[-1] if earlier_days else films[-2]
        # Films of one version only: a chart never mixes scales, nor does a default pair.
        if earlier.model_version != later.model_version:
            continue
        key = (later.scan_date, later.scan_id)
        if best_key is None or key > best_key:
            best, best_key = (earlier.scan_id, later.scan_id), key
    return best
