"""Temperature scaling and threshold choice on synthetic data."""

import numpy as np
import pytest

from models.calibration import (
    MIN_CLASS_SIZE,
    PopulationCalibration,
    cap_flag_rate,
    choose_threshold,
    fit_populations,
    fit_temperature,
)
from models.populations import ADULT, CHILD, POPULATIONS, UNKNOWN


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


def _population_data(rng, n, scale, population):
    true_logits = rng.normal(0, 2, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-true_logits))).astype(float)
    logits = np.stack([true_logits * scale, true_logits], axis=1)
    targets = np.stack([labels, labels], axis=1)
    return logits, targets, np.array([population] * n)


def test_each_population_gets_its_own_temperature_where_it_has_enough_films():
    rng = np.random.default_rng(1)
    child = _population_data(rng, 6000, 1.0, CHILD)
    adult = _population_data(rng, 6000, 4.0, ADULT)
    logits, targets, populations = (
        np.concatenate(parts) for parts in zip(child, adult, strict=True)
    )
    mask = np.ones_like(targets)
    mask[populations == ADULT, 1] = 0  # the second finding is never labelled in adults
    fitted = fit_populations(logits, targets, mask, populations, ("first", "second"))
    assert set(fitted) == set(POPULATIONS)
    assert fitted[CHILD].temperatures["first"] == pytest.approx(1.0, rel=0.15)
    assert fitted[ADULT].temperatures["first"] == pytest.approx(4.0, rel=0.15)
    assert 1.0 < fitted[UNKNOWN].temperatures["first"] < 4.0
    assert fitted[ADULT].fitted_on == {"first": ADULT, "second": UNKNOWN}
    assert fitted[ADULT].temperatures["second"] == fitted[UNKNOWN].temperatures["second"]
    assert fitted[ADULT].thresholds["second"] == fitted[UNKNOWN].thresholds["second"]


def test_a_population_with_too_few_positives_falls_back_to_all_films():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(400, 1))
    targets = (logits > 0).astype(float)
    populations = np.array([CHILD] * 200 + [ADULT] * 200)
    targets[200:] = 0
    targets[200 : 200 + MIN_CLASS_SIZE - 1] = 1  # one positive short of its own fit
    fitted = fit_populations(logits, targets, np.ones_like(targets), populations, ("only",))
    assert fitted[ADULT].fitted_on["only"] == UNKNOWN
    assert fitted[CHILD].fitted_on["only"] == CHILD


def test_population_calibration_round_trips_through_its_state():
    calibration = PopulationCalibration({"a": 1.5}, {"a": 0.3}, {"a": ADULT})
    assert PopulationCalibration.from_state(calibration.to_state()) == calibration


def test_flag_rate_cap_raises_the_threshold_only_where_too_many_negatives_are_flagged():
    negatives = np.linspace(0.0, 0.99, 100)  # 0.00, 0.01, ..., 0.99
    capped = cap_flag_rate(0.3, negatives, 0.05)
    assert (negatives >= capped).sum() == 5
    assert 0.94 < capped < 0.95
    assert cap_flag_rate(0.97, negatives, 0.05) == 0.97  # already strict enough
    assert (negatives >= cap_flag_rate(0.3, negatives, 0.0)).sum() == 0
    assert cap_flag_rate(0.3, np.array([]), 0.05) == 0.3
