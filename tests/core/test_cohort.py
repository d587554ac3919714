"""Tests for core.cohort: de-identified counts with small-group suppression."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest

from core.cohort import aggregate_cohort, cohort_figure


def _rows(spec: list[tuple[int, str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(spec, columns=["user_id", "month", "age_band", "sex", "finding"])


def _users(n: int, finding: str = "pneumonia", month: str = "2026-01", first: int = 0) -> list:
    return [(first + i, month, "40-59", "F", finding) for i in range(n)]


def test_group_of_nine_users_is_suppressed() -> None:
    table = aggregate_cohort(_rows(_users(9)), ["finding"])
    assert table.to_dict("records") == [{"finding": "pneumonia", "count": "<10", "users": "<10"}]


def test_group_of_ten_users_is_shown() -> None:
    table = aggregate_cohort(_rows(_users(10)), ["finding"])
    assert table.to_dict("records") == [{"finding": "pneumonia", "count": "10", "users": "10"}]


def test_one_user_with_many_results_counts_once_towards_the_threshold() -> None:
    # Nine people, one of whom stored 50 results: still fewer than ten people.
    rows = _rows(_users(9) + [(0, "2026-01", "40-59", "F", "pneumonia")] * 49)
    table = aggregate_cohort(rows, ["finding"])
    assert table.loc[0, "count"] == "<10"
    # With a tenth person the group is shown, and counts every result.
    rows = _rows(_users(10) + [(0, "2026-01", "40-59", "F", "pneumonia")] * 49)
    table = aggregate_cohort(rows, ["finding"])
    assert table.loc[0, "count"] == "59"
    assert table.loc[0, "users"] == "10"


def test_groups_are_suppressed_independently() -> None:
    rows = _rows(_users(12, "covid19") + _users(3, "pneumonia", first=100))
    table = aggregate_cohort(rows, ["finding"]).set_index("finding")
    assert table.loc["covid19", "count"] == "12"
    assert table.loc["pneumonia", "count"] == "<10"


def test_multiple_grouping_columns() -> None:
    rows = _rows(_users(10, month="2026-01") + _users(10, month="2026-02", first=50))
    table = aggregate_cohort(rows, ["month", "finding"])
    assert list(table.columns) == ["month", "finding", "count", "users"]
    assert table["count"].tolist() == ["10", "10"]


def test_output_never_contains_user_ids() -> None:
    table = aggregate_cohort(_rows(_users(15)), ["finding", "sex"])
    assert "user_id" not in table.columns
    assert all(isinstance(value, str) for value in table["count"])


def test_empty_by_gives_one_total_row() -> None:
    table = aggregate_cohort(_rows(_users(11)), [])
    assert table.to_dict("records") == [{"count": "11", "users": "11"}]


def test_missing_values_form_an_unknown_group() -> None:
    rows = _rows(_users(10))
    rows["age_band"] = None
    table = aggregate_cohort(rows, ["age_band"])
    assert table["age_band"].tolist() == ["unknown"]
    assert table["count"].tolist() == ["10"]


def test_grouping_by_user_id_is_refused() -> None:
    with pytest.raises(ValueError):
        aggregate_cohort(_rows(_users(10)), ["user_id"])


def test_threshold_is_configurable() -> None:
    table = aggregate_cohort(_rows(_users(4)), ["finding"], min_users=5)
    assert table.loc[0, "count"] == "<5"


def test_figure_plots_suppressed_groups_as_zero() -> None:
    rows = _rows(_users(12, "covid19") + _users(3, "pneumonia", first=100))
    fig = cohort_figure(aggregate_cohort(rows, ["finding"]), x="finding")
    assert isinstance(fig, go.Figure)
    assert sorted(fig.data[0].y.tolist()) == [0, 12]
