"""Tests for storage.results: what a stored classification holds."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from storage.results import ResultIn
from storage.scans import add_results, load_scan, save_scan
from tests.storage._factories import sample_pixels, sample_result, save_sample_scan


def test_result_from_a_model_prediction_is_stored_as_predicted(database, make_user) -> None:
    from models.inference import ModelInfo, Prediction

    alice = make_user("alice")
    prediction = Prediction(
        probabilities={"pneumonia": np.float32(0.75), "covid19": np.float64(0.125)},
        abstained=False,
        abstain_reason=None,
        ood_score=np.float32(3.5),
        population="adult",
        thresholds={"pneumonia": np.float32(0.25), "covid19": 0.5},
    )
    info = ModelInfo(
        name="cxr-net",
        version="2.1.0",
        sha256="cd" * 32,
        # The model's default (unknown-age) thresholds; the adult ones above must be stored.
        thresholds={"pneumonia": 0.6, "covid19": 0.9},
        device="cpu",
    )
    result = ResultIn.from_prediction(prediction, info)
    scan_id = save_scan(
        database,
        alice,
        pixels=sample_pixels(),
        metadata={},
        enhancement={},
        scan_date=date(2024, 1, 2),
        filename="a.png",
        result=result,
    )

    stored = load_scan(database, alice, scan_id).results[0]
    assert stored.probabilities == {"pneumonia": 0.75, "covid19": 0.125}
    assert (stored.model_name, stored.model_version, stored.checkpoint_sha256) == (
        "cxr-net",
        "2.1.0",
        "cd" * 32,
    )
    assert stored.thresholds == {"pneumonia": 0.25, "covid19": 0.5}
    assert stored.population == "adult"
    assert stored.ood_score == 3.5 and not stored.abstained

    abstained = ResultIn.from_prediction(
        Prediction({"pneumonia": 0.1}, True, "This is not a chest radiograph.", 99.0), info
    )
    assert abstained.abstained and abstained.abstain_reason == "This is not a chest radiograph."


def test_non_finite_probabilities_are_refused_with_the_whole_batch(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice, with_result=False)
    bad = replace(sample_result(), probabilities={"pneumonia": float("nan")})
    with pytest.raises(ValueError):
        add_results(database, alice, [(scan_id, sample_result()), (scan_id, bad)])
    assert load_scan(database, alice, scan_id).results == []
