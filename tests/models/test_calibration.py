"""Temperature scaling and threshold choice on synthetic data."""

import numpy as np
import pytest

from models.calibration import choose_threshold, fit_temperature


def test_temperature_recovers_the_overconfidence_factor():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, 20000)
    labels = (rng.random(20000) < 1 / (1 + np.exp(-true_logits))).astype(float)
    assert fit_temperature(true_logits * 3, labels) == pytest.approx(3, rel=0.1)


def test_threshold_separates_separable_classes():
    probabilities = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    labels = np.array([0, 0, 0, 1, 1])
    threshold = choose_threshold(probabilities, labels)
    assert 0.3 < threshold <= 0.7


def test_threshold_needs_both_classes():
    with pytest.raises(ValueError):
        choose_threshold(np.array([0.2, 0.4]), np.array([1, 1]))


def test_threshold_sits_in_the_middle_of_the_gap_between_classes():
    probabilities = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    labels = np.array([0, 0, 0, 1, 1])
    assert choose_threshold(probabilities, labels) == pytest.approx(0.5)


def test_threshold_maximises_youden_when_classes_overlap():
    probabilities = np.array([0.1, 0.2, 0.5, 0.4, 0.6, 0.8, 0.9])
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    # Cutting between 0.5 and 0.6 gives sensitivity 3/4 and specificity 1 (J 0.75);
    # between 0.2 and 0.4 gives 1 and 2/3 (J 0.67); every other cut is worse.
    assert choose_threshold(probabilities, labels) == pytest.approx(0.55)
