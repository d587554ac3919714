"""Post-hoc calibration and threshold choice, fitted on validation data only."""

from __future__ import annotations

import numpy as np


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
    sensitivity = 1 - np.searchsorted(sorted_positive, candidates, side="left") / len(sorted_positive)
    specificity = np.searchsorted(sorted_negative, candidates, side="left") / len(sorted_negative)
    youden = sensitivity + specificity - 1
    tied = np.flatnonzero(youden >= youden.max() - 1e-12)
    best = int(tied[len(tied) // 2])
    if best == 0:
        return float(candidates[0])
    return float((candidates[best - 1] + candidates[best]) / 2)
