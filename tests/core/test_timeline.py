"""Tests of the timeline built from readings: the frame, the figure and the tables.

The rules deciding what a scan shows (rise flags, side views, unsure models, older models)
are tested once, in ``tests/core/test_scan_reading.py``; here, that the timeline draws and
tables exactly what the readings say.
"""

from __future__ import annotations

import math
from datetime import date

import pytest

from core.findings import FINDINGS
from core.reading import ADULT
from core.timeline import (
    FRAME_COLUMNS,
    details_table,
    format_version,
    scans_needing_rescore,
    timeline_figure,
    timeline_frame,
    timeline_table,
)
from core.views import NOT_SCORED_SENTENCE, View
from storage.scans import ScanSummary
from tests.core._records import VALIDITY, make_result, make_scan, probs, read


def _three_scans() -> list[ScanSummary]:
    return [
        make_scan(3, date(2026, 4, 1), "c.png", results=[make_result(30, probs(0.41))]),
        make_scan(1, date(2026, 2, 1), "a.png", results=[make_result(10, probs(0.10))]),
        make_scan(2, date(2026, 3, 2), "b.png", results=[make_result(20, probs(0.12))]),
    ]


def _film(id: int, day: int, pneumonia: float, view: View, version: str = "1") -> ScanSummary:
    result = make_result(id * 10, probs(pneumonia), model_version=version)
    return make_scan(id, date(2026, 1, day), f"{view.value}-{id}.png", results=[result], view=view)


# --------------------------------------------------------------------------- frame


def test_frame_is_tidy_and_sorted_by_scan_date() -> None:
    frame = timeline_frame(read(_three_scans()))
    assert list(frame.columns) == list(FRAME_COLUMNS)
    assert len(frame) == 3 * len(FINDINGS)
    assert list(frame["scan_id"].drop_duplicates()) == [1, 2, 3]
    first = frame.iloc[0]
    assert first["finding"] == "pneumonia"
    assert first["probability"] == pytest.approx(0.10)
    assert first["model_version"] == "1"
    assert not first["flagged"] and not first["greyed"] and not first["view_uncertain"]


def test_frame_has_no_row_for_a_scan_without_numbers_and_handles_empty_input() -> None:
    assert timeline_frame([]).empty
    assert list(timeline_frame([]).columns) == list(FRAME_COLUMNS)
    readings = read(
        [
            make_scan(1, date(2026, 1, 1)),
            make_scan(2, date(2026, 1, 2), results=[make_result(1, probs(0.2))]),
        ]
    )
    assert set(timeline_frame(readings)["scan_id"]) == {2}


def test_the_frame_plots_the_current_model_while_the_details_keep_older_scores() -> None:
    scan = make_scan(
        1,
        date(2026, 1, 1),
        results=[
            make_result(1, probs(0.1), model_version="1"),
            make_result(2, probs(0.5), model_version="2"),
        ],
    )
    plotted = timeline_frame(read([scan], current_version="2"))
    assert set(plotted["model_version"]) == {"2"}
    assert plotted.iloc[0]["probability"] == pytest.approx(0.5)
    details = details_table([scan])
    assert list(details["Model"]) == ["cxr-densenet v2", "cxr-densenet v1"]
    assert list(details["Pneumonia"]) == ["50%", "10%"]


def test_a_score_at_its_threshold_is_flagged_on_the_timeline() -> None:
    result = make_result(1, probs(0.3), thresholds={"pneumonia": 0.3})
    frame = timeline_frame(read([make_scan(1, date(2026, 1, 1), results=[result])]))
    assert bool(frame.iloc[0]["flagged"]) is True
    assert frame.iloc[0]["threshold"] == pytest.approx(0.3)


def test_greyed_findings_are_left_off_unless_asked_for() -> None:
    scans = [make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.2, bacterial=0.9))])]
    readings = read(scans, population=ADULT, validity=VALIDITY)
    assert set(timeline_frame(readings)["finding"]) == {"pneumonia", "covid19"}
    every = timeline_frame(readings, include_greyed=True)
    assert set(every["finding"]) == set(FINDINGS)
    greyed = every[every["greyed"]]
    assert set(greyed["finding"]) == {"bacterial_pneumonia", "viral_pneumonia"}
    assert not greyed["flagged"].any()
    fig = timeline_figure(every, readings)
    faint = {trace.name: trace.opacity for trace in fig.data}
    assert faint["Bacterial pneumonia (greyed)"] == pytest.approx(0.35)
    assert faint["Pneumonia"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- figure


def test_figure_has_one_trace_per_finding_levels_and_flag_markers() -> None:
    scans = [
        make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.1))]),
        make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.2))]),
        make_scan(3, date(2026, 3, 1), results=[make_result(3, probs(0.45))]),
    ]
    readings = read(scans)
    fig = timeline_figure(timeline_frame(readings), readings)
    assert [t.name for t in fig.data] == [
        "Pneumonia",
        "Bacterial pneumonia",
        "Viral pneumonia",
        "COVID-19-like pattern",
    ]
    pneumonia = fig.data[0]
    # The last film rose 25 points: a diamond.
    assert list(pneumonia.marker.symbol) == ["circle", "circle", "diamond"]
    assert "Model %{customdata[1]}" in pneumonia.hovertemplate
    assert pneumonia.customdata[2][0] == "1 Mar 2026, frontal (PA, standing)"
    assert pneumonia.customdata[2][1] == "v1"
    assert "rose from 20% to 45%" in pneumonia.customdata[2][2]
    texts = [a.text for a in fig.layout.annotations]
    assert "Pneumonia level 50%" in texts
    # Version-change lines are gone: the chart holds one model version only.
    assert not any("model updated" in str(text) for text in texts)
    assert not [s for s in fig.layout.shapes if s.line.dash == "dash"]


def test_figure_with_a_single_scan() -> None:
    readings = read([make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.3))])])
    fig = timeline_figure(timeline_frame(readings), readings)
    assert len(fig.data) == len(FINDINGS)
    assert all(len(trace.x) == 1 for trace in fig.data)


def test_figure_plots_log_odds_so_changes_near_certainty_stay_visible() -> None:
    readings = read(
        [
            make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.99))]),
            make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.9999))]),
        ]
    )
    fig = timeline_figure(timeline_frame(readings), readings)
    pneumonia = fig.data[0]
    # On a probability axis these two points are 0.0099 apart; in log-odds about 4.6.
    assert pneumonia.y[1] - pneumonia.y[0] == pytest.approx(math.log(9999) - math.log(99))
    assert list(pneumonia.text) == ["99%", "100%"]
    assert "%{text}" in pneumonia.hovertemplate
    assert list(fig.layout.yaxis.ticktext) == ["0.1%", "1%", "10%", "50%", "90%", "99%", "99.9%"]
    assert fig.layout.yaxis.tickvals[3] == 0.0
    level_lines = [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert level_lines[0].y0 == pytest.approx(0.0)  # the 50% level


def test_each_projection_is_its_own_line_and_unscored_views_have_no_point() -> None:
    scans = [
        _film(1, 1, 0.10, View.PA),
        _film(2, 1, 0.20, View.AP),
        _film(3, 2, 0.12, View.PA),
        _film(4, 3, 0.30, View.UNKNOWN),
        _film(5, 3, 0.99, View.LATERAL),
    ]
    readings = read(scans)
    fig = timeline_figure(timeline_frame(readings), readings)
    pneumonia = [t for t in fig.data if t.legendgroup == "pneumonia"]
    assert [t.name for t in pneumonia] == ["Pneumonia (PA)", "Pneumonia (AP)"]
    assert [len(t.x) for t in pneumonia] == [2, 1]
    assert [t.line.dash for t in pneumonia] == ["solid", "dash"]
    assert all(t.mode == "lines+markers" for t in pneumonia)
    assert "Taken the same day as 1 other film: Frontal (AP)." in pneumonia[0].customdata[0][2]
    assert any(a.text == "same-day films" for a in fig.layout.annotations)


def test_a_film_of_uncertain_view_is_an_open_circle_never_joined_to_the_line() -> None:
    scans = [
        _film(1, 1, 0.1, View.PA),
        make_scan(
            2,
            date(2026, 1, 2),
            results=[make_result(20, probs(0.6))],
            view_doubt="This image does not look like a frontal film.",
        ),
        _film(3, 3, 0.2, View.PA),
    ]
    readings = read(scans)
    fig = timeline_figure(timeline_frame(readings), readings)
    pneumonia = [t for t in fig.data if t.legendgroup == "pneumonia"]
    assert [t.name for t in pneumonia] == ["Pneumonia", "Pneumonia (view uncertain)"]
    joined, alone = pneumonia
    assert joined.mode == "lines+markers" and len(joined.x) == 2
    assert alone.mode == "markers" and list(alone.marker.symbol) == ["circle-open"]
    assert "its view was confirmed by hand" in alone.customdata[0][2]


# --------------------------------------------------------------------------- tables


def test_table_newest_first_with_status_values_and_flags() -> None:
    scans = [*_three_scans(), _film(4, 9, 0.9, View.LATERAL)]
    table = timeline_table(read(scans))
    assert list(table["Scan date"]) == ["1 Apr 2026", "2 Mar 2026", "1 Feb 2026", "9 Jan 2026"]
    assert list(table["Status"]) == ["Scored", "Scored", "Scored", "Not scored (view)"]
    assert table.loc[0, "Pneumonia"] == "41%"
    assert "rose from 12% to 41%" in table.loc[0, "Needs attention"]
    assert table.loc[1, "Needs attention"] == ""
    assert table.loc[3, "Pneumonia"] == "" and NOT_SCORED_SENTENCE in table.loc[3, "Note"]
    assert table.loc[3, "View"] == "Side (lateral)"
    assert timeline_table([]).empty


def test_details_table_lists_every_result_newest_scan_first_without_unsure_numbers() -> None:
    scans = [
        make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.2))]),
        make_scan(
            2,
            date(2026, 2, 1),
            results=[make_result(2, probs(0.8), abstained=True, abstain_reason="Too dark.")],
        ),
    ]
    details = details_table(scans)
    assert list(details["Scan date"]) == ["1 Feb 2026", "1 Jan 2026"]
    assert details.loc[0, "Pneumonia"] == "" and details.loc[0, "Note"] == "Too dark."
    assert details.loc[1, "Pneumonia"] == "20%" and details.loc[1, "Note"] == ""


def test_scans_needing_rescore_are_frontal_films_without_the_current_model() -> None:
    scans = [
        _film(1, 1, 0.1, View.PA, "1"),
        _film(2, 2, 0.1, View.PA, "2"),
        _film(3, 3, 0.1, View.AP, "1"),
        _film(4, 4, 0.1, View.LATERAL, "1"),
        make_scan(5, date(2026, 1, 5), view=View.UNKNOWN),
        make_scan(6, date(2026, 1, 6)),
    ]
    assert scans_needing_rescore(scans, "2") == [1, 3, 6]


def test_format_version_adds_a_single_v() -> None:
    assert format_version("2") == "v2"
    assert format_version("v2.1") == "v2.1"
