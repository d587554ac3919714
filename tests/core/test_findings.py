"""The rules on scores: which threshold applies, what is flagged, which finding heads a result."""

from __future__ import annotations

import numpy as np
import pytest

from core.findings import (
    DEFAULT_THRESHOLD,
    FINDINGS,
    flagged_findings,
    heatmap_finding,
    is_flagged,
    threshold_for,
    top_finding,
)


def test_threshold_is_the_findings_own_else_the_default() -> None:
    assert DEFAULT_THRESHOLD == 0.5
    assert threshold_for({"pneumonia": 0.31}, "pneumonia") == pytest.approx(0.31)
    assert threshold_for({"pneumonia": 0.31}, "covid19") == DEFAULT_THRESHOLD
    assert threshold_for({}, "pneumonia") == DEFAULT_THRESHOLD
    assert threshold_for(None, "pneumonia") == DEFAULT_THRESHOLD
    # A stored threshold of 0 is a threshold, not a missing one.
    assert threshold_for({"pneumonia": 0.0}, "pneumonia") == 0.0


def test_a_score_exactly_at_its_threshold_is_flagged() -> None:
    assert is_flagged(0.42, 0.42) is True
    assert is_flagged(0.4200001, 0.42) is True
    assert is_flagged(0.4199999, 0.42) is False
    assert is_flagged(np.float32(0.5), 0.5) is True


def test_arrays_are_flagged_element_by_element_with_the_same_rule() -> None:
    flags = is_flagged(np.array([0.1, 0.5, 0.9]), 0.5)
    assert flags.dtype == np.bool_
    assert flags.tolist() == [False, True, True]


def test_flagged_findings_use_each_findings_threshold_in_findings_order() -> None:
    probabilities = {
        "covid19": 0.35,
        "pneumonia": 0.6,
        "viral_pneumonia": 0.49,
        "bacterial_pneumonia": 0.2,
    }
    thresholds = {"covid19": 0.3, "pneumonia": 0.6}
    assert flagged_findings(probabilities, thresholds) == ["pneumonia", "covid19"]
    assert flagged_findings({"unknown": 0.99}, None) == []


def test_top_finding_is_the_largest_margin_not_the_highest_probability() -> None:
    # The case where the copies disagreed: pneumonia has the highest score (0.80) but sits
    # 0.05 above its threshold, while COVID-19 at 0.45 is 0.25 above its own.
    probabilities = {
        "pneumonia": 0.80,
        "bacterial_pneumonia": 0.1,
        "viral_pneumonia": 0.1,
        "covid19": 0.45,
    }
    thresholds = {
        "pneumonia": 0.75,
        "bacterial_pneumonia": 0.5,
        "viral_pneumonia": 0.5,
        "covid19": 0.20,
    }
    assert max(probabilities, key=probabilities.__getitem__) == "pneumonia"
    assert top_finding(probabilities, thresholds) == "covid19"


def test_top_finding_ignores_a_higher_score_below_its_threshold() -> None:
    probabilities = {
        "pneumonia": 0.70,
        "bacterial_pneumonia": 0.1,
        "viral_pneumonia": 0.1,
        "covid19": 0.25,
    }
    thresholds = {"pneumonia": 0.9, "covid19": 0.2}
    assert top_finding(probabilities, thresholds) == "covid19"


def test_top_finding_is_none_when_nothing_is_flagged() -> None:
    probabilities = dict.fromkeys(FINDINGS, 0.3)
    assert top_finding(probabilities, {"pneumonia": 0.4}) is None
    assert top_finding({}, None) is None


def test_top_finding_without_thresholds_uses_the_default_and_breaks_ties_by_findings_order() -> (
    None
):
    probabilities = {
        "pneumonia": 0.7,
        "bacterial_pneumonia": 0.7,
        "viral_pneumonia": 0.2,
        "covid19": 0.5,
    }
    assert top_finding(probabilities, None) == "pneumonia"
    assert top_finding({**probabilities, "pneumonia": 0.2}, None) == "bacterial_pneumonia"
    assert top_finding(dict.fromkeys(FINDINGS, 0.5), None) == "pneumonia"


def test_the_first_heatmap_is_the_top_finding_else_the_highest_score() -> None:
    probabilities = {
        "pneumonia": 0.80,
        "bacterial_pneumonia": 0.1,
        "viral_pneumonia": 0.1,
        "covid19": 0.45,
    }
    assert heatmap_finding(probabilities, {"pneumonia": 0.75, "covid19": 0.2}) == "covid19"
    assert heatmap_finding(probabilities, dict.fromkeys(FINDINGS, 0.9)) == "pneumonia"
    with pytest.raises(ValueError):
        heatmap_finding({}, None)
