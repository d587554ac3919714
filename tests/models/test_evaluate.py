"""Evaluation report pieces on tiny synthetic sets with known answers."""

import numpy as np
import pytest

from models.evaluate import covid_false_flags, finding_report, flag_rates, three_way


def test_finding_report_on_a_separable_set():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probabilities = np.array([0.1, 0.2, 0.6, 0.7, 0.8, 0.9])
    report = finding_report(labels, probabilities, threshold=0.65, seed=0)
    assert report["auc"] == 1.0
    assert report["confusion"] == [[3, 0], [0, 3]]
    assert report["accuracy"] == 1.0
    assert report["n"] == 6 and report["positives"] == 3
    assert report["auc_ci"][1] == 1.0
    assert report["roc"]["tpr"][-1] == 1.0


def test_three_way_uses_pneumonia_threshold_then_subtype():
    # columns: pneumonia, bacterial, viral, covid19
    probabilities = np.array(
        [
            [0.1, 0.9, 0.1, 0.0],  # below pneumonia threshold -> normal, whatever the subtypes say
            [0.8, 0.7, 0.2, 0.0],  # bacterial
            [0.8, 0.3, 0.6, 0.0],  # viral
            [0.9, 0.6, 0.4, 0.0],  # predicted bacterial, truly viral: one miss
        ]
    )
    thresholds = {
        "pneumonia": 0.5,
        "bacterial_pneumonia": 0.5,
        "viral_pneumonia": 0.5,
        "covid19": 0.5,
    }
    result = three_way(["normal", "bacterial", "viral", "viral"], probabilities, thresholds)
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_covid_false_flags_count_only_certain_negatives_at_each_films_threshold():
    negative = np.array([True, True, True, True, False])
    probabilities = np.array([0.9, 0.4, 0.6, 0.1, 0.99])
    thresholds = np.array([0.5, 0.5, 0.7, 0.05, 0.5])
    pneumonia = np.array([True, True, False, False, False])
    result = covid_false_flags(negative, probabilities, thresholds, pneumonia)
    assert (result["n"], result["flagged"]) == (4, 2)
    assert result["rate"] == 0.5
    assert result["rate_pneumonia"] == 0.5 and result["rate_no_finding"] == 0.5
    assert result["ci"][0] < 0.5 < result["ci"][1]


def test_finding_report_with_a_threshold_per_population():
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([0.3, 0.6, 0.4, 0.9])
    # The first two are children (threshold 0.2), the last two adults (0.5).
    report = finding_report(labels, probabilities, threshold=np.array([0.2, 0.2, 0.5, 0.5]), seed=0)
    assert report["confusion"] == [[0, 2], [1, 1]]
    assert report["threshold"] is None


def test_flag_rates_count_no_finding_films_and_positives_at_each_films_threshold():
    # columns: pneumonia, bacterial, viral, covid19
    targets = np.array(
        [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    )
    mask = np.ones_like(targets)
    mask[3, 1:3] = 0  # NIH pneumonia: no subtype
    mask[4, :3] = 0  # COVID-19: only covid19 known
    probabilities = np.array(
        [
            [0.30, 0.0, 0.0, 0.0],  # no finding, flagged at 0.2, not at 0.5
            [0.10, 0.0, 0.0, 0.0],  # no finding, not flagged
            [0.60, 0.0, 0.0, 0.9],  # no finding, flagged on pneumonia and covid19
            [0.40, 0.0, 0.0, 0.0],  # pneumonia, flagged at 0.2
            [0.90, 0.0, 0.0, 0.9],  # COVID-19 (not a no-finding film)
            [0.99, 0.0, 0.0, 0.0],  # another population's film, left out
        ]
    )
    thresholds = np.full_like(probabilities, 0.5)
    thresholds[:4, 0] = 0.2
    rows = np.array([True, True, True, True, True, False])
    report = flag_rates(rows, (targets, mask), (probabilities, thresholds))
    assert report["no_finding_films"] == 3
    pneumonia = report["findings"]["pneumonia"]
    assert (pneumonia["no_finding"]["flagged"], pneumonia["no_finding"]["n"]) == (2, 3)
    assert pneumonia["sensitivity"]["rate"] == 1.0 and pneumonia["sensitivity"]["n"] == 1
    assert pneumonia["thresholds"] == [0.2, 0.5]
    assert report["findings"]["covid19"]["no_finding"]["flagged"] == 1
    assert report["findings"]["covid19"]["sensitivity"]["n"] == 1
    assert report["findings"]["bacterial_pneumonia"]["sensitivity"] is None
    assert report["any_finding"]["flagged"] == 2
