"""The probability chart of one result (its headline is the scan reading's, tested there)."""

from core.findings import FINDINGS
from core.results import probability_figure

THRESHOLDS = dict.fromkeys(FINDINGS, 0.5)


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


def test_missing_thresholds_fall_back_to_the_default_in_the_chart():
    probabilities = {**dict.fromkeys(FINDINGS, 0.1), "pneumonia": 0.5, "bacterial_pneumonia": 0.49}
    bars, marks = probability_figure(probabilities, {"covid19": 0.01}).data
    assert list(marks.x) == [0.5, 0.5, 0.5, 0.01]
    # At the threshold counts as reached: pneumonia (0.5) and covid19 share the flagged colour.
    assert bars.marker.color[0] == bars.marker.color[3] != bars.marker.color[1]
