"""Classification metrics with no dependency beyond NumPy and the app's flag rule, so they are
easy to verify and count a case positive exactly as the app flags it."""

from __future__ import annotations

import numpy as np

from core.findings import is_flagged


def _ranks(values: np.ndarray) -> np.ndarray:
    # Average ranks for ties, 1-based, as in the Mann-Whitney U statistic.
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(values):
        stop = start
        while stop + 1 < len(values) and sorted_values[stop + 1] == sorted_values[start]:
            stop += 1
        ranks[order[start : stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney), ties counted as one half.

    Args:
        labels: 0/1 labels (N,).
        scores: Higher means more likely positive (N,).

    Returns:
        The AUC, or NaN when only one class is present.
    """
    labels = np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def bootstrap_auc_ci(
    labels: np.ndarray,
    scores: np.ndarray,
    *,
    rounds: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the AUC.

    Args:
        labels: 0/1 labels.
        scores: Scores.
        rounds: Bootstrap resamples.
        seed: Seed of the resampling.
        level: Coverage of the interval.

    Returns:
        ``(low, high)``.
    """
    labels, scores = np.asarray(labels), np.asarray(scores)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        index = rng.integers(0, len(labels), len(labels))
        auc = roc_auc(labels[index], scores[index])
        if not np.isnan(auc):
            values.append(auc)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def roc_points(
    labels: np.ndarray, scores: np.ndarray, max_points: int = 200
) -> dict[str, list[float]]:
    """False- and true-positive rates at every distinct threshold, thinned for plotting."""
    labels = np.asarray(labels).astype(bool)
    thresholds = np.unique(scores)[::-1]
    fpr, tpr = [0.0], [0.0]
    for t in thresholds:
        predicted = is_flagged(scores, t)
        tpr.append(float(predicted[labels].mean()))
        fpr.append(float(predicted[~labels].mean()))
    step = max(1, len(fpr) // max_points)
    keep = list(range(0, len(fpr), step)) + [len(fpr) - 1]
    return {"fpr": [fpr[i] for i in keep], "tpr": [tpr[i] for i in keep]}


def confusion(labels: np.ndarray, predicted: np.ndarray) -> list[list[int]]:
    """2x2 confusion matrix ``[[tn, fp], [fn, tp]]``."""
    labels, predicted = np.asarray(labels).astype(bool), np.asarray(predicted).astype(bool)
    return [
        [int((~labels & ~predicted).sum()), int((~labels & predicted).sum())],
        [int((labels & ~predicted).sum()), int((labels & predicted).sum())],
    ]


def flags(probabilities: np.ndarray, thresholds: float | np.ndarray) -> np.ndarray:
    """The app's flag rule (``core.findings.is_flagged``) with one threshold per case.

    Args:
        probabilities: Scores (N,).
        thresholds: One threshold, or one per case (N,) where cases belong to populations
            with different thresholds.

    Returns:
        Boolean array (N,).
    """
    probabilities = np.asarray(probabilities)
    per_case = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), probabilities.shape)
    flagged = np.zeros(probabilities.shape, dtype=bool)
    for threshold in np.unique(per_case):
        rows = per_case == threshold
        flagged[rows] = is_flagged(probabilities[rows], float(threshold))
    return flagged


def wilson_interval(successes: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound at 0 of n, unlike the normal one).

    Args:
        successes: Count of cases with the property.
        total: Count of cases, at least 1.
        z: Normal quantile of the coverage.

    Returns:
        ``(low, high)``.
    """
    rate = successes / total
    centre = (rate + z**2 / (2 * total)) / (1 + z**2 / total)
    half = z * np.sqrt(rate * (1 - rate) / total + z**2 / (4 * total**2)) / (1 + z**2 / total)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def threshold_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float | np.ndarray
) -> dict:
    """Accuracy, sensitivity, specificity and confusion matrix at ``p >= threshold``.

    ``threshold`` may hold one value per case (see :func:`flags`); the report's ``threshold``
    is then None unless all cases share one.
    """
    labels = np.asarray(labels).astype(bool)
    predicted = flags(np.asarray(probabilities), threshold)
    (tn, fp), (fn, tp) = confusion(labels, predicted)
    distinct = np.unique(np.asarray(threshold, dtype=np.float64))
    return {
        "threshold": float(distinct[0]) if len(distinct) == 1 else None,
        "accuracy": (tp + tn) / len(labels),
        "sensitivity": tp / (tp + fn) if tp + fn else float("nan"),
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "confusion": [[tn, fp], [fn, tp]],
    }


def reliability(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> dict:
    """Expected calibration error and the reliability-diagram bins.

    Equal-width bins over [0, 1]; ECE is the count-weighted mean of
    ``|mean predicted probability - observed positive rate|`` per bin.

    Args:
        labels: 0/1 labels.
        probabilities: Predicted probabilities of the positive class.
        bins: Number of bins.

    Returns:
        ``{"ece", "bin_confidence", "bin_accuracy", "bin_count"}`` (empty bins omitted).
    """
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    index = np.minimum((probabilities * bins).astype(int), bins - 1)
    confidence, accuracy, count, ece = [], [], [], 0.0
    for b in range(bins):
        members = index == b
        if not members.any():
            continue
        confidence.append(float(probabilities[members].mean()))
        accuracy.append(float(labels[members].mean()))
        count.append(int(members.sum()))
        ece += members.sum() / len(labels) * abs(confidence[-1] - accuracy[-1])
    return {
        "ece": float(ece),
        "bin_confidence": confidence,
        "bin_accuracy": accuracy,
        "bin_count": count,
    }
