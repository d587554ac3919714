"""Temperature scaling and threshold choice on synthetic data."""

import numpy as np
import pytest

from models.calibration import (
    MAX_NO_FINDING_FLAG_RATE,
    MIN_CLASS_SIZE,
    PopulationCalibration,
    cap_flag_rate,
    cap_no_finding_flags,
    choose_threshold,
    fit_populations,
    fit_temperature,
    no_finding_rows,
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


def test_flag_rate_cap_never_flags_more_than_allowed_when_negatives_are_tied():
    negatives = np.array([0.99, 0.99, 0.99, 0.5, 0.4, 0.3, 0.2, 0.1, 0.1, 0.0])
    capped = cap_flag_rate(0.2, negatives, 0.2)  # 2 of 10 allowed, but 3 are tied at the top
    assert capped > 0.99
    assert (negatives >= capped).sum() <= 2


def test_no_finding_films_have_every_known_label_negative():
    targets = np.array([[0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 1], [1, 0, 0, 1], [0, 0, 0, 0]])
    # normal; pneumonia; COVID-19 (only covid19 known); NIH no finding (subtypes unknown);
    # nothing known (not a no-finding film: nothing says it is clear).
    assert no_finding_rows(targets, mask).tolist() == [True, False, False, True, False]


def _two_population_scores():
    # Per population, 10 no-finding films and 10 positives of the first finding; the second
    # finding is never positive. Children's no-finding films score low on both findings;
    # adults' no-finding films score high on the first (4 of 10 above 0.5).
    child_negatives = np.linspace(-4.0, -2.0, 10)
    adult_negatives = np.array([-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.5, 1.0, 1.5, 2.0])
    positives = np.linspace(0.2, 4.0, 10)
    first = np.concatenate([child_negatives, positives, adult_negatives, positives])
    second = np.full(40, -3.0)
    second[[9, 29]] = 3.0  # one no-finding film per population scores high on the second
    logits = np.stack([first, second], axis=1)
    targets = np.zeros((40, 2))
    targets[10:20, 0] = targets[30:40, 0] = 1
    populations = np.array([CHILD] * 20 + [ADULT] * 20)
    return logits, targets, populations


def test_every_finding_of_every_population_is_capped_on_its_own_no_finding_films():
    logits, targets, populations = _two_population_scores()
    lenient = PopulationCalibration(
        temperatures={"first": 1.0, "second": 1.0},
        thresholds={"first": 0.05, "second": 0.01},
        fitted_on={"first": CHILD, "second": CHILD},
    )
    calibration = dict.fromkeys(POPULATIONS, lenient)
    no_finding = no_finding_rows(targets, np.ones_like(targets))
    capped = cap_no_finding_flags(
        calibration, logits, no_finding, populations, ("first", "second"), 0.10
    )
    probabilities = 1 / (1 + np.exp(-logits))
    for population in POPULATIONS:
        rows = no_finding & (
            np.ones(40, bool) if population == UNKNOWN else populations == population
        )
        assert capped[population].temperatures == lenient.temperatures
        for index, finding in enumerate(("first", "second")):
            threshold = capped[population].thresholds[finding]
            assert threshold >= lenient.thresholds[finding]
            flagged = probabilities[rows, index] >= threshold
            assert flagged.mean() <= 0.10, (population, finding)
    # Children's no-finding films were flagged on the first finding by 0.05 (0.018-0.12), so
    # it rises for them too, but far less than for adults (whose films score higher).
    assert capped[CHILD].thresholds["first"] < 0.2 < 0.5 < capped[ADULT].thresholds["first"]
    # A threshold already strict enough stays where it was.
    strict = PopulationCalibration(
        temperatures={"first": 1.0, "second": 1.0},
        thresholds={"first": 0.99, "second": 0.99},
        fitted_on={"first": CHILD, "second": CHILD},
    )
    unchanged = cap_no_finding_flags(
        dict.fromkeys(POPULATIONS, strict), logits, no_finding, populations, ("first", "second")
    )
    assert all(unchanged[p] == strict for p in POPULATIONS)
    assert MAX_NO_FINDING_FLAG_RATE == 0.10


def test_kept_temperatures_are_kept_and_thresholds_chosen_at_them():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(400, 1)) * 3
    targets = (logits + rng.normal(size=(400, 1)) > 0).astype(float)
    populations = np.array([CHILD] * 200 + [ADULT] * 200)
    kept = {CHILD: {"only": 2.0}, ADULT: {"only": 0.5}, UNKNOWN: {"only": 1.0}}
    fitted = fit_populations(logits, targets, np.ones_like(targets), populations, ("only",), kept)
    for population in POPULATIONS:
        assert fitted[population].temperatures == kept[population]
    rows = populations == ADULT
    expected = choose_threshold(1 / (1 + np.exp(-logits[rows, 0] / 0.5)), targets[rows, 0])
    assert fitted[ADULT].thresholds["only"] == pytest.approx(expected)
