"""The findings the classifier reports, and the rules that turn its scores into flags.

Every place that decides whether a score is flagged, which threshold applies, or which finding
heads a result calls this module, so the upload page, history, report, timeline, cohort counts,
model evaluation and the command line cannot disagree on the same scan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, overload

import numpy as np
import numpy.typing as npt

FINDINGS: tuple[str, ...] = ("pneumonia", "bacterial_pneumonia", "viral_pneumonia", "covid19")

FINDING_LABELS: dict[str, str] = {
    "pneumonia": "Pneumonia",
    "bacterial_pneumonia": "Bacterial pneumonia",
    "viral_pneumonia": "Viral pneumonia",
    # Named for what it was shown to tell apart: COVID-19 films from healthy adults' films. On
    # real serial films it scores SARS and streptococcal pneumonias as high as COVID-19
    # (models/MODEL_CARD.md), so it is a pattern, not the virus.
    "covid19": "COVID-19-like pattern",
}

#: What a finding cannot tell apart, said wherever its number is explained.
FINDING_LIMITS: dict[str, str] = {
    "covid19": (
        "The COVID-19-like pattern was learned from COVID-19 films against healthy adults' "
        "films; it scores other adult pneumonias (such as SARS or bacterial pneumonia) as high, "
        "so it cannot tell COVID-19 from them, and only a laboratory test shows the virus."
    ),
}

DISCLAIMER = (
    "Decision support only, not a diagnosis: these numbers come from a computer model that can be "
    "wrong, so discuss every result with a qualified clinician."
)

#: Threshold of a finding that has none recorded (results stored before thresholds were kept).
DEFAULT_THRESHOLD = 0.5


def threshold_for(thresholds: Mapping[str, float] | None, finding: str) -> float:
    """The decision threshold of one finding: its own when given, else :data:`DEFAULT_THRESHOLD`.

    Args:
        thresholds: Threshold per finding, usually those stored with a result or the current
            model's; ``None`` or a missing finding means none is known.
        finding: Finding name from :data:`FINDINGS`.

    Returns:
        The threshold in [0, 1].
    """
    if thresholds and finding in thresholds:
        return float(thresholds[finding])
    return DEFAULT_THRESHOLD


@overload
def is_flagged(probability: float, threshold: float) -> bool: ...


@overload
def is_flagged(probability: npt.NDArray[Any], threshold: float) -> npt.NDArray[np.bool_]: ...


def is_flagged(
    probability: float | npt.NDArray[Any], threshold: float
) -> bool | npt.NDArray[np.bool_]:
    """Whether a score is flagged: at or above its threshold (a score on the line counts).

    The thresholds are fitted with the same convention (``models.calibration.choose_threshold``),
    so flagging anywhere else with a strict ``>`` would miss the cases at the cut.

    Args:
        probability: One score, or an array of scores (model evaluation) in [0, 1].
        threshold: The finding's threshold (see :func:`threshold_for`).

    Returns:
        A ``bool`` for one score, a boolean array of the same shape for an array.
    """
    if isinstance(probability, np.ndarray):
        return np.greater_equal(probability, threshold)
    return bool(probability >= threshold)


def flagged_findings(
    probabilities: Mapping[str, float], thresholds: Mapping[str, float] | None
) -> list[str]:
    """The findings at or above their threshold, in :data:`FINDINGS` order.

    Args:
        probabilities: Score per finding; names outside :data:`FINDINGS` are ignored.
        thresholds: Threshold per finding (see :func:`threshold_for`).

    Returns:
        The flagged finding names, possibly none.
    """
    return [
        finding
        for finding in FINDINGS
        if finding in probabilities
        and is_flagged(float(probabilities[finding]), threshold_for(thresholds, finding))
    ]


def top_finding(
    probabilities: Mapping[str, float], thresholds: Mapping[str, float] | None
) -> str | None:
    """The finding that heads a result: the flagged one furthest above its own threshold.

    Thresholds differ per finding (each is fitted for its own finding), so a raw probability
    is not comparable across findings: 0.55 against a threshold of 0.3 is a stronger signal
    than 0.6 against 0.58. The margin above the threshold is therefore what ranks findings;
    ties go to the earlier finding in :data:`FINDINGS`.

    Nothing is returned when no finding is flagged: naming the highest score below every
    threshold would present as a finding what the model does not suggest a closer look for.

    Args:
        probabilities: Score per finding; names outside :data:`FINDINGS` are ignored.
        thresholds: Threshold per finding (see :func:`threshold_for`).

    Returns:
        The finding name, or ``None`` when no finding is at or above its threshold.
    """
    flagged = flagged_findings(probabilities, thresholds)
    if not flagged:
        return None
    return max(flagged, key=lambda f: float(probabilities[f]) - threshold_for(thresholds, f))


def heatmap_finding(
    probabilities: Mapping[str, float], thresholds: Mapping[str, float] | None
) -> str:
    """The finding whose heatmap is shown first: the top finding, else the highest score.

    A heatmap needs a finding even when none is flagged; then the one the model leans to most
    shows where it looked.

    Args:
        probabilities: Score per finding of :data:`FINDINGS` (at least one).
        thresholds: Threshold per finding (see :func:`threshold_for`).

    Returns:
        A finding name from :data:`FINDINGS`.

    Raises:
        ValueError: ``probabilities`` holds none of :data:`FINDINGS`.
    """
    top = top_finding(probabilities, thresholds)
    if top is not None:
        return top
    return max((f for f in FINDINGS if f in probabilities), key=lambda f: float(probabilities[f]))


#: Stored probabilities are clipped this far from 0 and 1 before taking log-odds, so a
#: probability rounded to 1.0 maps to a finite value (about +-13.8).
_LOG_ODDS_CLIP = 1e-6


def log_odds(probability: float) -> float:
    """Log-odds of a probability, finite even for a stored 0.0 or 1.0.

    Probabilities saturate near 0 and 1, where a real change moves them by less than a plot
    shows; their log-odds do not, so timelines plot this scale (labelled in percent).

    Args:
        probability: A calibrated probability in [0, 1].

    Returns:
        ``log(p / (1 - p))`` with ``p`` clipped to ``[1e-6, 1 - 1e-6]``.
    """
    p = min(max(float(probability), _LOG_ODDS_CLIP), 1 - _LOG_ODDS_CLIP)
    return math.log(p / (1 - p))
