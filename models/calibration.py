"""Post-hoc calibration and threshold choice, fitted on validation data only.

Children and adults get their own temperature and threshold per finding where their
validation films hold enough of both classes (``fit_populations``); the model's
probabilities are not equally calibrated for the two (see the model card). Each threshold
is then raised, where needed, until it flags at most :data:`MAX_NO_FINDING_FLAG_RATE` of the
population's no-finding validation films (``cap_no_finding_flags``), so that a flag means
something.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from models.populations import POPULATIONS, UNKNOWN

#: Fewest validation films of each class (per finding, counting perturbed copies) for a
#: population to get its own temperature and threshold instead of the pooled ones.
MIN_CLASS_SIZE = 40
#: Largest share of a population's no-finding validation films (every known label
#: negative) that one finding's threshold may flag.
MAX_NO_FINDING_FLAG_RATE = 0.10


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
        and the next one, whichever is higher. Where the two are tied (saturated
        probabilities), the cut sits just above the tie, so fewer are flagged, never more.
    """
    if len(negatives) == 0:
        return threshold
    ordered = np.sort(negatives)[::-1]
    allowed = int(np.floor(max_rate * len(ordered)))
    if allowed >= len(ordered):
        return threshold
    # p >= cut flags a case, so the cut must sit strictly above the first negative to spare.
    spared = float(ordered[allowed])
    cut = (float(ordered[allowed - 1]) + spared) / 2 if allowed else spared
    if cut <= spared:
        cut = float(np.nextafter(spared, np.inf))
    return float(max(threshold, cut))


def no_finding_rows(targets: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Films with no finding: at least one label known and every known label negative.

    Args:
        targets: 0/1 labels (N, F).
        mask: 1 where a label is known (N, F).

    Returns:
        Boolean (N,). Kermany NORMAL, COVID-radiography Normal and NIH No_findings films are
        no-finding films; a COVID-19 film (only covid19 known, positive) is not.
    """
    known = mask == 1
    return known.any(axis=1) & ~(known & (targets == 1)).any(axis=1)


def population_rows(populations: np.ndarray, population: str) -> np.ndarray:
    """Rows a population's values are fitted on: its own films, or every film for ``unknown``."""
    return np.ones(len(populations), bool) if population == UNKNOWN else populations == population


def cap_no_finding_flags(
    calibration: Mapping[str, PopulationCalibration],
    logits: np.ndarray,
    no_finding: np.ndarray,
    populations: np.ndarray,
    findings: Sequence[str],
    max_rate: float = MAX_NO_FINDING_FLAG_RATE,
) -> dict[str, PopulationCalibration]:
    """Raise every threshold that flags more than ``max_rate`` of no-finding films.

    For each population and finding, the population's no-finding films (every film for
    ``unknown``) are scored at the population's temperature and the threshold is capped with
    :func:`cap_flag_rate`. Temperatures are kept.

    Args:
        calibration: ``{population: PopulationCalibration}`` (:func:`fit_populations`).
        logits: Validation logits (N, F), perturbed copies stacked below the clean ones.
        no_finding: Boolean (N,): the film has no finding (:func:`no_finding_rows`).
        populations: Population of each row (N,), ``child`` or ``adult``.
        findings: Finding names, in column order.
        max_rate: Largest share of no-finding films one finding may flag.

    Returns:
        A new ``{population: PopulationCalibration}`` with the capped thresholds.
    """
    capped = {}
    for population, fitted in calibration.items():
        rows = no_finding & population_rows(populations, population)
        thresholds = {}
        for index, finding in enumerate(findings):
            negatives = _sigmoid(logits[rows, index] / fitted.temperatures[finding])
            thresholds[finding] = cap_flag_rate(fitted.thresholds[finding], negatives, max_rate)
        capped[population] = replace(fitted, thresholds=thresholds)
    return capped


def fit_finding(
    logits: np.ndarray, labels: np.ndarray, temperature: float | None = None
) -> tuple[float, float]:
    """Temperature and threshold of one finding: NLL-optimal temperature, then Youden cut.

    Args:
        logits: Raw logits of one finding (N,).
        labels: 0/1 labels (N,), both classes present.
        temperature: Keep this temperature instead of fitting one (re-calibration of a
            shipped model whose probabilities must not change).
    """
    if temperature is None:
        temperature = fit_temperature(logits, labels)
    return temperature, choose_threshold(_sigmoid(logits / temperature), labels)


def fit_populations(
    logits: np.ndarray,
    targets: np.ndarray,
    mask: np.ndarray,
    populations: np.ndarray,
    findings: Sequence[str],
    temperatures: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, PopulationCalibration]:
    """Fit each population's calibration; too few films of a class fall back to all films.

    Args:
        logits: Validation logits (N, F), perturbed copies stacked below the clean ones.
        targets: 0/1 labels (N, F).
        mask: 1 where a label is known (N, F).
        populations: Population of each row (N,), ``child`` or ``adult``.
        findings: Finding names, in column order.
        temperatures: ``{population: {finding: temperature}}`` to keep instead of fitting
            (every population of ``models.populations.POPULATIONS``); thresholds are still
            chosen, at these temperatures (on all films where the population has too few).

    Returns:
        ``{population: PopulationCalibration}`` for every population of
        ``models.populations.POPULATIONS``; ``unknown`` is fitted on all rows.
    """

    def kept(population: str, finding: str) -> float | None:
        return None if temperatures is None else float(temperatures[population][finding])

    pooled = {}
    for index, finding in enumerate(findings):
        known = mask[:, index] == 1
        pooled[finding] = fit_finding(
            logits[known, index], targets[known, index], kept(UNKNOWN, finding)
        )
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
        fitted_temperatures, thresholds, fitted_on = {}, {}, {}
        for index, finding in enumerate(findings):
            rows = (mask[:, index] == 1) & (populations == population)
            labels = targets[rows, index]
            enough = min(int(labels.sum()), int(len(labels) - labels.sum())) >= MIN_CLASS_SIZE
            if enough:
                fitted = fit_finding(logits[rows, index], labels, kept(population, finding))
            elif temperatures is None:
                fitted = pooled[finding]
            else:  # all films, at the population's own kept temperature
                known = mask[:, index] == 1
                fitted = fit_finding(
                    logits[known, index], targets[known, index], kept(population, finding)
                )
            fitted_temperatures[finding], thresholds[finding] = fitted
            fitted_on[finding] = population if enough else UNKNOWN
        result[population] = PopulationCalibration(fitted_temperatures, thresholds, fitted_on)
    return result
