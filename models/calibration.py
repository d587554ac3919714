"""Post-hoc calibration and threshold choice, fitted on validation data only.

Children and adults get their own temperature and threshold per finding where their
validation films hold enough of both classes (``fit_populations``); the model's
probabilities are not equally calibrated for the two (see the model card).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.populations import POPULATIONS, UNKNOWN

#: Fewest validation films of each class (per finding, counting perturbed copies) for a
#: population to get its own temperature and threshold instead of the pooled ones.
MIN_CLASS_SIZE = 40


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _nll(logits: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(_sigmoid(logits), 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood of ``sigmoid(logits / T)``.

    A 1-D grid search is exact enough for one scalar and cannot diverge.

    Args:
        logits: Raw logits of one finding (N,).
        labels: 0/1 labels (N,).

    Returns:
        The temperature, between 0.25 and 8.
    """
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 241))
    losses = [_nll(logits / t, labels) for t in grid]
    return float(grid[int(np.argmin(losses))])


def choose_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Threshold maximising Youden's J (sensitivity + specificity - 1).

    The cut is placed halfway between the best candidate and the next lower observed
    probability, so with well-separated validation data it sits in the middle of the
    gap between the classes instead of on the lowest positive case. Ties between
    candidates go to the median one.

    Args:
        probabilities: Calibrated probabilities of one finding (N,).
        labels: 0/1 labels (N,), both classes present.

    Returns:
        The probability threshold; a case is positive when ``p >= threshold``.

    Raises:
        ValueError: Only one class is present.
    """
    positives = labels == 1
    if positives.all() or not positives.any():
        raise ValueError("both classes are needed to choose a threshold")
    candidates = np.unique(probabilities)
    sorted_positive = np.sort(probabilities[positives])
    sorted_negative = np.sort(probabilities[~positives])
    sensitivity = 1 - np.searchsorted(sorted_positive, candidates, side="left") / len(
        sorted_positive
    )
    specificity = np.searchsorted(sorted_negative, candidates, side="left") / len(sorted_negative)
    youden = sensitivity + specificity - 1
    tied = np.flatnonzero(youden >= youden.max() - 1e-12)
    best = int(tied[len(tied) // 2])
    if best == 0:
        return float(candidates[0])
    return float((candidates[best - 1] + candidates[best]) / 2)


@dataclass(frozen=True)
class PopulationCalibration:
    """Temperatures and thresholds of one population, with where each was fitted.

    Attributes:
        temperatures: Per-finding temperature of the sigmoid.
        thresholds: Per-finding decision threshold on calibrated probabilities.
        fitted_on: Per finding, the population whose validation films fitted its values
            (``models.populations.UNKNOWN``, i.e. all films, where the population had too few).
    """

    temperatures: dict[str, float]
    thresholds: dict[str, float]
    fitted_on: dict[str, str]

    def to_state(self) -> dict:
        """Plain dict for the checkpoint (``torch.load(weights_only=True)`` reads it)."""
        return {
            "temperatures": self.temperatures,
            "thresholds": self.thresholds,
            "fitted_on": self.fitted_on,
        }

    @classmethod
    def from_state(cls, state: dict) -> PopulationCalibration:
        """Inverse of :meth:`to_state`."""
        return cls(
            temperatures={k: float(v) for k, v in state["temperatures"].items()},
            thresholds={k: float(v) for k, v in state["thresholds"].items()},
            fitted_on={k: str(v) for k, v in state["fitted_on"].items()},
        )


def cap_flag_rate(threshold: float, negatives: np.ndarray, max_rate: float) -> float:
    """Raise a threshold until it flags at most ``max_rate`` of films known to be negative.

    Args:
        threshold: The threshold chosen otherwise (Youden's J).
        negatives: Calibrated probabilities of certain negatives (N,).
        max_rate: Largest share of them that may be flagged.

    Returns:
        ``threshold``, or the cut halfway between the highest negative that may stay flagged
        and the next one, whichever is higher.
    """
    if len(negatives) == 0:
        return threshold
    ordered = np.sort(negatives)[::-1]
    allowed = int(np.floor(max_rate * len(ordered)))
    if allowed >= len(ordered):
        return threshold
    # p >= cut flags a case, so the cut must sit strictly above the first negative to spare.
    cut = (
        (ordered[allowed - 1] + ordered[allowed]) / 2
        if allowed
        else np.nextafter(ordered[0], np.inf)
    )
    return float(max(threshold, cut))


def fit_finding(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Temperature and threshold of one finding: NLL-optimal temperature, then Youden cut."""
    temperature = fit_temperature(logits, labels)
    return temperature, choose_threshold(_sigmoid(logits / temperature), labels)


def fit_populations(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray,
    populations: np.ndarray,
    findings: Sequence[str],
) -> dict[str, PopulationCalibration]:
    """Fit each population's calibration; too few films of a class fall back to all films.

    Args:
        logits: Validation logits (N, F), perturbed copies stacked below the clean ones.
        targets: 0/1 labels (N, F).
        mask: 1 where a label is known (N, F).
        populations: Population of each row (N,), ``child`` or ``adult``.
        findings: Finding names, in column order.

    Returns:
        ``{population: PopulationCalibration}`` for every population of
        ``models.populations.POPULATIONS``; ``unknown`` is fitted on all rows.
    """
    pooled = {}
    for index, finding in enumerate(findings):
        known = mask[:, index] == 1
        pooled[finding] = fit_finding(logits[known, index], targets[known, index])
    result = {
        UNKNOWN: PopulationCalibration(
            temperatures={f: t for f, (t, _) in pooled.items()},
            thresholds={f: c for f, (_, c) in pooled.items()},
            fitted_on=dict.fromkeys(findings, UNKNOWN),
        )
    }
    for population in POPULATIONS:
        if population == UNKNOWN:
            continue
        temperatures, thresholds, fitted_on = {}, {}, {}
        for index, finding in enumerate(findings):
            rows = (mask[:, index] == 1) & (populations == population)
            labels = targets[rows, index]
            enough = min(int(labels.sum()), int(len(labels) - labels.sum())) >= MIN_CLASS_SIZE
            temperatures[finding], thresholds[finding] = (
                fit_finding(logits[rows, index], labels) if enough else pooled[finding]
            )
            fitted_on[finding] = population if enough else UNKNOWN
        result[population] = PopulationCalibration(temperatures, thresholds, fitted_on)
    return result
