"""Tests of the timeline frame, red flags, model-version marks and figure."""

from __future__ import annotations

import math
from datetime import date

import pytest

from core.findings import FINDINGS
from core.timeline import (
    format_version,
    previous_comparable,
    red_flags,
    result_threshold,
    same_day_note,
    same_day_partners,
    scans_needing_rescore,
    select_result,
    timeline_figure,
    timeline_frame,
    timeline_table,
    version_changes,
)
from core.views import View
from storage.scans import ScanSummary
from tests.core._records import make_result, make_scan, probs


def _three_scans() -> list[ScanSummary]:
    return [
        make_scan(3, date(2026, 4, 1), "c.png", results=[make_result(30, probs(0.41))]),
        make_scan(1, date(2026, 2, 1), "a.png", results=[make_result(10, probs(0.10))]),
        make_scan(2, date(2026, 3, 2), "b.png", results=[make_result(20, probs(0.12))]),
    ]


def test_frame_is_tidy_and_sorted_by_scan_date() -> None:
    frame = timeline_frame(_three_scans(), "1")
    assert len(frame) == 3 * len(FINDINGS)
    assert list(frame["scan_id"].drop_duplicates()) == [1, 2, 3]
    first = frame.iloc[0]
    assert first["finding"] == "pneumonia"
    assert first["probability"] == pytest.approx(0.10)
    assert first["model_version"] == "1"
    assert first["result_id"] == 10
    assert bool(first["is_current_model"])


def test_frame_skips_unscored_scans_and_handles_empty_input() -> None:
    assert timeline_frame([]).empty
    frame = timeline_frame(
        [
            make_scan(1, date(2026, 1, 1)),
            make_scan(2, date(2026, 1, 2), results=[make_result(1, probs(0.2))]),
        ]
    )
    assert set(frame["scan_id"]) == {2}


def test_select_result_prefers_current_version_else_latest() -> None:
    old, new = (
        make_result(1, probs(0.1), model_version="1"),
        make_result(2, probs(0.3), model_version="2"),
    )
    later_old = make_result(3, probs(0.2), model_version="1")
    assert select_result([old, new, later_old], "2") is new
    assert select_result([old, new, later_old], "3") is later_old
    assert select_result([old, new, later_old]) is later_old
    assert select_result([], "2") is None


def test_all_results_keeps_older_scores_after_rescore() -> None:
    scan = make_scan(
        1,
        date(2026, 1, 1),
        results=[
            make_result(1, probs(0.1), model_version="1"),
            make_result(2, probs(0.5), model_version="2"),
        ],
    )
    plotted = timeline_frame([scan], "2")
    every = timeline_frame([scan], "2", all_results=True)
    assert set(plotted["model_version"]) == {"2"}
    assert set(every["model_version"]) == {"1", "2"}
    assert every.loc[every["model_version"] == "1", "is_current_model"].eq(False).all()


def test_red_flag_for_rise_names_finding_values_and_previous_date() -> None:
    flags = red_flags(_three_scans(), margin=0.15)
    assert flags == {3: ["Pneumonia rose from 12% to 41% since the PA film of 2 Mar 2026."]}


def test_rise_equal_to_margin_is_not_flagged_and_margin_is_configurable() -> None:
    scans = [
        make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.25))]),
        make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.40))]),
    ]
    assert red_flags(scans, margin=0.15) == {}
    assert 2 in red_flags(scans, margin=0.10)


def test_result_threshold_prefers_the_stored_one_then_the_fallback_then_the_default() -> None:
    result = make_result(1, probs(0.4), thresholds={"pneumonia": 0.3})
    assert result_threshold(result, "pneumonia", {"pneumonia": 0.9}) == 0.3
    assert result_threshold(result, "covid19", {"covid19": 0.9}) == 0.9
    assert result_threshold(result, "covid19") == 0.5


def test_a_score_at_its_threshold_is_flagged_on_the_timeline() -> None:
    result = make_result(1, probs(0.3), thresholds={"pneumonia": 0.3})
    scans = [make_scan(1, date(2026, 1, 1), results=[result])]
    assert bool(timeline_frame(scans).iloc[0]["above_threshold"]) is True
    assert red_flags(scans)[1] == [
        "Pneumonia is at 30%, at or above its decision threshold of 30%."
    ]


def test_red_flag_above_threshold_uses_the_results_own_threshold_first() -> None:
    scans = [
        make_scan(
            1,
            date(2026, 1, 1),
            results=[make_result(1, probs(0.35), thresholds={"pneumonia": 0.3})],
        )
    ]
    flags = red_flags(scans, thresholds={"pneumonia": 0.9})
    assert flags[1] == ["Pneumonia is at 35%, at or above its decision threshold of 30%."]
    no_stored = [
        make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.35), thresholds={})])
    ]
    assert red_flags(no_stored, thresholds={"pneumonia": 0.9}) == {}
    assert 1 in red_flags(no_stored, thresholds={"pneumonia": 0.3})


def test_no_rise_flag_across_model_versions_or_from_abstained_results() -> None:
    across = [
        make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.05), model_version="1")]),
        make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.45), model_version="2")]),
    ]
    assert red_flags(across, current_version="2") == {}
    abstained = [
        make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.05))]),
        make_scan(
            2,
            date(2026, 2, 1),
            results=[
                make_result(2, probs(0.9), abstained=True, abstain_reason="not a chest X-ray")
            ],
        ),
        make_scan(3, date(2026, 3, 1), results=[make_result(3, probs(0.45))]),
    ]
    flags = red_flags(abstained)
    assert 2 not in flags
    assert flags[3] == ["Pneumonia rose from 5% to 45% since the PA film of 1 Jan 2026."]


def test_red_flags_rejects_a_margin_outside_zero_one() -> None:
    with pytest.raises(ValueError):
        red_flags(_three_scans(), margin=0)


def test_version_changes_marks_update_and_older_scans() -> None:
    scans = [
        make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.1), model_version="1")]),
        make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.1), model_version="2")]),
        make_scan(3, date(2026, 3, 1), results=[make_result(3, probs(0.1), model_version="1")]),
    ]
    changes = version_changes(scans, current_version="2")
    assert [(c.scan_id, c.previous_version, c.version, c.label) for c in changes] == [
        (2, "1", "2", "model updated to v2"),
        (3, "2", "1", "older model v1"),
    ]
    assert scans_needing_rescore(scans, "2") == [1, 3]
    assert version_changes(_three_scans(), "1") == []


def test_format_version_adds_a_single_v() -> None:
    assert format_version("2") == "v2"
    assert format_version("v2.1") == "v2.1"


def test_figure_has_one_trace_per_finding_thresholds_flags_and_version_line() -> None:
    scans = [
        make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.1), model_version="1")]),
        make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.2), model_version="2")]),
        make_scan(3, date(2026, 3, 1), results=[make_result(3, probs(0.7), model_version="2")]),
    ]
    frame = timeline_frame(scans, "2")
    flags = red_flags(scans, current_version="2")
    fig = timeline_figure(
        frame, flags=flags, changes=version_changes(scans, "2"), current_version="2"
    )
    assert [t.name for t in fig.data] == [
        "Pneumonia",
        "Bacterial pneumonia",
        "Viral pneumonia",
        "COVID-19 pneumonia",
    ]
    pneumonia = fig.data[0]
    assert list(pneumonia.marker.symbol) == ["circle-open", "circle", "diamond"]
    assert "Model %{customdata[1]}" in pneumonia.hovertemplate
    assert pneumonia.customdata[2][1] == "v2"
    assert "rose from 20% to 70%" in pneumonia.customdata[2][3]
    texts = [a.text for a in fig.layout.annotations]
    assert "model updated to v2" in texts
    assert "Pneumonia threshold 50%" in texts
    dashed = [s for s in fig.layout.shapes if s.line.dash == "dash"]
    assert len(dashed) == 1


def test_figure_with_a_single_scan() -> None:
    scans = [make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.3))])]
    fig = timeline_figure(timeline_frame(scans, "1"))
    assert len(fig.data) == len(FINDINGS)
    assert all(len(trace.x) == 1 for trace in fig.data)


def test_table_newest_first_with_percentages_and_flags() -> None:
    scans = _three_scans()
    flags = red_flags(scans)
    table = timeline_table(timeline_frame(scans, "1"), flags)
    assert list(table["Scan date"]) == ["2026-04-01", "2026-03-02", "2026-02-01"]
    assert table.loc[0, "Pneumonia"] == "41%"
    assert "rose from 12% to 41%" in table.loc[0, "Red flags"]
    assert table.loc[1, "Red flags"] == ""
    assert timeline_table(timeline_frame([])).empty


def test_figure_plots_log_odds_so_changes_near_certainty_stay_visible() -> None:
    scans = [
        make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.99))]),
        make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.9999))]),
    ]
    fig = timeline_figure(timeline_frame(scans, "1"))
    pneumonia = fig.data[0]
    # On a probability axis these two points are 0.0099 apart; in log-odds about 4.6.
    assert pneumonia.y[1] - pneumonia.y[0] == pytest.approx(math.log(9999) - math.log(99))
    assert list(pneumonia.text) == ["99%", "100%"]
    assert "%{text}" in pneumonia.hovertemplate
    assert list(fig.layout.yaxis.ticktext) == ["0.1%", "1%", "10%", "50%", "90%", "99%", "99.9%"]
    assert fig.layout.yaxis.tickvals[3] == 0.0
    threshold_lines = [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert threshold_lines[0].y0 == pytest.approx(0.0)  # the 50% threshold


# --------------------------------------------------------------------------- like with like


def _film(id: int, day: int, pneumonia: float, view: View, version: str = "1") -> ScanSummary:
    result = make_result(id * 10, probs(pneumonia), model_version=version)
    return make_scan(id, date(2026, 1, day), f"{view.value}-{id}.png", results=[result], view=view)


def test_no_rise_against_a_film_of_the_same_day() -> None:
    # Two PA films on 2026-01-05: the second must not "rise since 2026-01-05".
    scans = [_film(1, 5, 0.10, View.PA), _film(2, 5, 0.45, View.PA)]
    assert not any("rose" in r for reasons in red_flags(scans).values() for r in reasons)
    later = [*scans, _film(3, 9, 0.45, View.PA)]
    # The baseline of the later film is the latest film of an earlier day (the second).
    assert red_flags(later).get(3) is None


def test_rises_are_measured_only_within_one_projection() -> None:
    scans = [
        _film(1, 1, 0.10, View.PA),
        _film(2, 2, 0.45, View.AP),  # higher, but another projection
        _film(3, 3, 0.12, View.AP_SUPINE),
        _film(4, 4, 0.40, View.PA),
        _film(5, 5, 0.44, View.UNKNOWN),  # never compared
    ]
    flags = red_flags(scans, thresholds=None, margin=0.15)
    rises = {scan_id: [r for r in reasons if "rose" in r] for scan_id, reasons in flags.items()}
    assert rises.get(2, []) == [] and rises.get(5, []) == []
    assert rises[4] == ["Pneumonia rose from 10% to 40% since the PA film of 1 Jan 2026."]


def test_no_rise_across_model_versions_within_one_projection() -> None:
    scans = [_film(1, 1, 0.10, View.PA, "1"), _film(2, 2, 0.45, View.PA, "2")]
    assert red_flags(scans, margin=0.15) == {}


def test_side_views_are_neither_plotted_flagged_nor_rescored() -> None:
    # A side view scored before views were recorded keeps its old result in the record.
    scans = [
        _film(1, 1, 0.10, View.PA),
        _film(2, 1, 0.99, View.LATERAL),
        _film(3, 2, 0.12, View.PA),
    ]
    assert 2 not in set(timeline_frame(scans)["scan_id"])
    assert 2 not in red_flags(scans)
    unscored = make_scan(4, date(2026, 1, 3), view=View.LATERAL)
    unknown = make_scan(5, date(2026, 1, 3), view=View.UNKNOWN)
    assert scans_needing_rescore([*scans, unscored, unknown], "2") == [1, 3]


def test_each_projection_is_its_own_line_and_unknown_views_are_lone_points() -> None:
    scans = [
        _film(1, 1, 0.10, View.PA),
        _film(2, 1, 0.20, View.AP),
        _film(3, 2, 0.12, View.PA),
        _film(4, 3, 0.30, View.UNKNOWN),
    ]
    partners = same_day_partners(scans)
    same_day = {scan_id: same_day_note(others) for scan_id, others in partners.items()}
    fig = timeline_figure(timeline_frame(scans, "1"), same_day=same_day)
    pneumonia = [t for t in fig.data if t.legendgroup == "pneumonia"]
    assert [t.name for t in pneumonia] == [
        "Pneumonia (PA)",
        "Pneumonia (AP)",
        "Pneumonia (unknown)",
    ]
    assert [len(t.x) for t in pneumonia] == [2, 1, 1]
    assert [t.mode for t in pneumonia] == ["lines+markers", "lines+markers", "markers"]
    assert set(partners) == {1, 2}
    assert same_day[1] == "Taken the same day as 1 other film: Frontal (AP)."
    assert any(a.text == "same-day films" for a in fig.layout.annotations)
    table = timeline_table(timeline_frame(scans, "1"), same_day=same_day)
    assert list(table["View"])[-2:] == ["Frontal (AP)", "Frontal (PA, standing)"]
    assert "same day" in table["Note"].iloc[-1]


def test_previous_comparable_is_the_latest_earlier_day_of_the_same_projection() -> None:
    scans = [
        _film(1, 1, 0.1, View.PA),
        _film(2, 2, 0.1, View.AP),
        _film(3, 3, 0.1, View.PA),
        _film(4, 3, 0.1, View.PA),
    ]
    by_id = {scan.id: scan for scan in scans}
    assert previous_comparable(scans, by_id[4]).id == 1
    assert previous_comparable(scans, by_id[2]) is None
    assert previous_comparable(scans, make_scan(9, date(2026, 1, 9), view=View.UNKNOWN)) is None
