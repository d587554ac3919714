"""Evaluation report pieces on tiny synthetic sets with known answers."""

import numpy as np
import pytest

from models.evaluate import finding_report, three_way


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
    thresholds = {"pneumonia": 0.5, "bacterial_pneumonia": 0.5, "viral_pneumonia": 0.5, "covid19": 0.5}
    result = three_way(["normal", "bacterial", "viral", "viral"], probabilities, thresholds)
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
