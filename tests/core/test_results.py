"""Headline sentence and probability chart of one result."""

from core.findings import FINDINGS
from core.results import probability_figure, top_finding_sentence

THRESHOLDS = dict.fromkeys(FINDINGS, 0.5)


def test_no_finding_above_its_level():
    sentence = top_finding_sentence(dict.fromkeys(FINDINGS, 0.2), THRESHOLDS)
    assert sentence == "No finding reached the level at which the model suggests a closer look."


def test_headline_names_the_finding_furthest_above_its_level_and_the_others():
    probabilities = {
        "pneumonia": 0.9,
        "bacterial_pneumonia": 0.6,
        "viral_pneumonia": 0.1,
        "covid19": 0.05,
    }
    sentence = top_finding_sentence(probabilities, THRESHOLDS)
    assert sentence.startswith(
        "The model's strongest signal is pneumonia (90%, above its level of 50%)"
    )
    assert "also above their level: bacterial pneumonia" in sentence
    assert "viral" not in sentence


def test_chart_marks_thresholds_and_colours_bars_above_them():
    probabilities = {
        "pneumonia": 0.9,
        "bacterial_pneumonia": 0.2,
        "viral_pneumonia": 0.1,
        "covid19": 0.05,
    }
    thresholds = {**THRESHOLDS, "covid19": 0.3}
    bars, marks = probability_figure(probabilities, thresholds).data
    assert list(bars.x) == [0.9, 0.2, 0.1, 0.05]
    assert list(marks.x) == [0.5, 0.5, 0.5, 0.3]
    assert bars.marker.color[0] != bars.marker.color[1]


def test_headline_ranks_by_margin_above_each_findings_own_threshold():
    probabilities = {**dict.fromkeys(FINDINGS, 0.1), "pneumonia": 0.8, "covid19": 0.45}
    thresholds = {**THRESHOLDS, "pneumonia": 0.75, "covid19": 0.2}
    sentence = top_finding_sentence(probabilities, thresholds)
    assert sentence.startswith(
        "The model's strongest signal is COVID-19 pneumonia (45%, above its level of 20%)"
    )
    assert "also above their level: pneumonia." in sentence


def test_missing_thresholds_fall_back_to_the_default_in_headline_and_chart():
    probabilities = {**dict.fromkeys(FINDINGS, 0.1), "pneumonia": 0.5, "bacterial_pneumonia": 0.49}
    headline = top_finding_sentence(probabilities, None)
    assert headline.startswith("The model's strongest signal is pneumonia (50%")
    bars, marks = probability_figure(probabilities, {"covid19": 0.01}).data
    assert list(marks.x) == [0.5, 0.5, 0.5, 0.01]
    # At the threshold counts as reached: pneumonia (0.5) and covid19 share the flagged colour.
    assert bars.marker.color[0] == bars.marker.color[3] != bars.marker.color[1]
