"""How one result is read for one patient: which numbers hold for them, and why they differ.

Each finding was learned from, and shown to work for, certain patients only (the model's
validity table, ``models.validity``): the pneumonia subtypes from children aged 1-5,
COVID-19 from adults. A number outside the patient's population is shown greyed with one
plain sentence and kept out of red flags and, by default, off the timeline; when the age is
not known each number says whom it was learned from. Every page and report reads a result
through :func:`read_result`, so none of them decides this on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from core.findings import FINDING_LABELS, FINDING_LIMITS, FINDINGS, is_flagged, threshold_for

#: The population names of ``models.populations`` (``core`` imports no other package).
CHILD, ADULT, UNKNOWN = "child", "adult", "unknown"

#: Whom the model's films of each population came from, in words.
LEARNED_FROM: dict[str, str] = {CHILD: "children aged 1-5", ADULT: "adults"}

#: The film of a patient of each population, in words.
PATIENT_FILM: dict[str, str] = {CHILD: "a child's film", ADULT: "an adult's film"}


class VerdictLike(Protocol):
    """What is read of ``models.validity.FindingValidity``."""

    @property
    def valid(self) -> bool: ...


@dataclass(frozen=True)
class FindingReading:
    """One finding's number as it holds for this patient.

    Attributes:
        finding: One of ``core.findings.FINDINGS``.
        label: Its plain name.
        probability: The model's probability.
        threshold: The level at which the model suggests a closer look.
        flagged: At or above that level.
        valid: Whether the finding was shown to work for the patient's population; None when
            the patient's age is not known.
        learned_from: Whom it was learned from, e.g. ``"children aged 1-5 only"``; None when
            this model version was not checked on test films.
        note: One plain sentence when the number does not hold for this patient.
    """

    finding: str
    label: str
    probability: float
    threshold: float
    flagged: bool
    valid: bool | None
    learned_from: str | None
    note: str | None

    @property
    def greyed(self) -> bool:
        """Shown greyed, kept out of red flags and off the timeline by default."""
        return self.valid is False

    @property
    def text(self) -> str:
        """E.g. ``"COVID-19-like pattern 71% - learned from adults only"``."""
        if self.learned_from is None:
            return f"{self.label} {self.probability:.0%} - not checked on test films"
        return f"{self.label} {self.probability:.0%} - learned from {self.learned_from}"


@dataclass(frozen=True)
class ResultReading:
    """A result read for one patient.

    Attributes:
        population: The patient's population (``child``, ``adult`` or ``unknown``).
        findings: One reading per finding, in ``FINDINGS`` order.
    """

    population: str
    findings: tuple[FindingReading, ...]

    @property
    def excluded(self) -> frozenset[str]:
        """The findings outside the patient's population (greyed)."""
        return frozenset(f.finding for f in self.findings if f.greyed)

    @property
    def explanation(self) -> str:
        """Why one number is high while another is low, in plain words."""
        parts = []
        for item in self.findings:
            part = item.text
            if item.greyed:
                part += f", so it says little about {PATIENT_FILM[self.population]}"
            parts.append(part)
        intro = (
            "Your age is not known, so each number says whom it was learned from"
            if self.population not in PATIENT_FILM
            else "Each number was learned from different patients"
        )
        limits = [FINDING_LIMITS[f.finding] for f in self.findings if f.finding in FINDING_LIMITS]
        return " ".join([f"{intro}: " + "; ".join(parts) + ".", *limits])


def read_result(
    probabilities: Mapping[str, float],
    thresholds: Mapping[str, float] | None,
    population: str,
    validity: Mapping[tuple[str, str], VerdictLike],
) -> ResultReading:
    """Read one result for a patient of one population.

    Args:
        probabilities: The result's probability per finding.
        thresholds: Its threshold per finding (see ``core.findings.threshold_for``).
        population: The patient's population at the scan's date (``unknown`` without an age).
        validity: The validity table of the model that made the result, keyed by
            ``(finding, population)`` (``Classifier.validity`` / ``models.validity``); a
            missing entry counts as not shown to work.

    Returns:
        The reading; findings absent from ``probabilities`` are left out.
    """
    readings = []
    for finding in FINDINGS:
        if finding not in probabilities:
            continue
        valid_for = [
            p for p in (CHILD, ADULT) if (v := validity.get((finding, p))) is not None and v.valid
        ]
        valid = (population in valid_for) if population in PATIENT_FILM else None
        label = FINDING_LABELS[finding]
        threshold = threshold_for(thresholds, finding)
        probability = float(probabilities[finding])
        learned = _learned_from(valid_for)
        note = None
        if valid is False:
            whom = f"was learned from {learned}" if learned else "was not checked on test films"
            note = (
                f"{label} {whom}, so this number says little about "
                f"{PATIENT_FILM[population]}; it is shown greyed and raises no flag."
            )
        readings.append(
            FindingReading(
                finding,
                label,
                probability,
                threshold,
                is_flagged(probability, threshold),
                valid,
                learned,
                note,
            )
        )
    return ResultReading(population, tuple(readings))


def _learned_from(valid_for: list[str]) -> str | None:
    if not valid_for:
        return None
    if len(valid_for) == 1:
        return f"{LEARNED_FROM[valid_for[0]]} only"
    return " and ".join(LEARNED_FROM[p] for p in valid_for)
