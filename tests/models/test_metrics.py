"""Metrics on tiny synthetic sets whose answers are known by hand."""

import numpy as np
import pytest

from models.metrics import (
    bootstrap_auc_ci,
    confusion,
    flags,
    reliability,
    roc_auc,
    roc_points,
    threshold_metrics,
    wilson_interval,
)


def test_auc_perfect_reversed_and_tied():
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert roc_auc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5


def test_auc_counts_pairs():
    # Pairs (pos, neg): 0.8>0.1, 0.8>0.6, 0.4>0.1, 0.4<0.6 -> 3 of 4 ordered correctly.
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.8, 0.4])) == pytest.approx(0.75)


def test_auc_one_class_is_nan():
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_bootstrap_ci_brackets_auc():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    scores = labels + rng.normal(0, 1, 400)
    low, high = bootstrap_auc_ci(labels, scores, rounds=200)
    assert low < roc_auc(labels, scores) < high
    assert high - low < 0.15


def test_threshold_metrics_and_confusion():
    labels = np.array([0, 0, 0, 1, 1])
    probabilities = np.array([0.1, 0.6, 0.2, 0.7, 0.3])
    result = threshold_metrics(labels, probabilities, 0.5)
    assert result["confusion"] == [[2, 1], [1, 1]]
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["sensitivity"] == pytest.approx(1 / 2)
    assert result["specificity"] == pytest.approx(2 / 3)
    assert confusion(labels, probabilities >= 0.05) == [[0, 3], [0, 2]]


def test_reliability_of_calibrated_and_overconfident_predictions():
    labels = np.array([0] * 8 + [1] * 2 + [1] * 8 + [0] * 2)
    calibrated = np.array([0.2] * 10 + [0.8] * 10)
    assert reliability(labels, calibrated)["ece"] == pytest.approx(0.0, abs=1e-9)
    overconfident = np.array([0.0] * 10 + [1.0] * 10)
    result = reliability(labels, overconfident)
    assert result["ece"] == pytest.approx(0.2)
    assert result["bin_count"] == [10, 10]


def test_roc_points_start_at_origin_and_end_at_one():
    points = roc_points(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.4, 0.6]))
    assert (points["fpr"][0], points["tpr"][0]) == (0.0, 0.0)
    assert (points["fpr"][-1], points["tpr"][-1]) == (1.0, 1.0)


def test_flags_use_each_cases_own_threshold():
    probabilities = np.array([0.3, 0.3, 0.6, 0.6])
    np.testing.assert_array_equal(
        flags(probabilities, np.array([0.2, 0.5, 0.6, 0.7])), [True, False, True, False]
    )
    np.testing.assert_array_equal(flags(probabilities, 0.5), [False, False, True, True])


def test_threshold_metrics_with_thresholds_per_case():
    report = threshold_metrics(
        np.array([0, 1, 0, 1]), np.array([0.3, 0.3, 0.6, 0.6]), np.array([0.2, 0.2, 0.7, 0.5])
    )
    assert report["confusion"] == [[1, 1], [0, 2]]
    assert report["threshold"] is None
    assert (
        threshold_metrics(np.array([0, 1]), np.array([0.1, 0.9]), np.array([0.5, 0.5]))["threshold"]
        == 0.5
    )


def test_wilson_interval_brackets_the_rate_and_handles_zero():
    low, high = wilson_interval(0, 100)
    assert low == 0 and 0.02 < high < 0.05
    low, high = wilson_interval(20, 100)
    assert low < 0.2 < high
    assert (
        wilson_interval(20, 100)[1] - wilson_interval(20, 100)[0]
        > wilson_interval(200, 1000)[1] - wilson_interval(200, 1000)[0]
    )
