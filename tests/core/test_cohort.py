"""Tests for core.cohort: de-identified counts that single nobody out.

:func:`find_leaks` is the analyst's attack, written independently of the implementation: it
takes every table the analyst page can ask for and solves for every left-out group from all
published counts together (which includes subtracting published groups from any total). The
storage tests run it on stored data too.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from core.cohort import GROUP_COLUMNS, MIN_USERS, aggregate_cohort, cohort_figure
from core.cohort import suppress_categories as suppress

#: Every grouping the analyst page offers (its multiselect over GROUP_COLUMNS); the order of
#: the chosen columns changes only the column order, which ``test_column_order_follows_by``
#: covers.
GROUPINGS: list[tuple[str, ...]] = [
    columns
    for size in range(len(GROUP_COLUMNS) + 1)
    for columns in itertools.combinations(GROUP_COLUMNS, size)
]


def find_leaks(
    rows: pd.DataFrame, tables: Mapping[tuple[str, ...], pd.DataFrame], k: int = MIN_USERS
) -> list[str]:
    """Everything an analyst could learn about a small group from ``tables``.

    Args:
        rows: The true rows (``user_id`` and :data:`GROUP_COLUMNS`, no missing values).
        tables: The published table of every grouping in :data:`GROUPINGS`.
        k: Smallest group that may be published.

    Returns:
        One sentence per leak: a published group under ``k`` people, a published count that
        is wrong, or a left-out group whose result count follows from the published counts.
    """
    finest = rows.groupby(list(GROUP_COLUMNS)).ngroup().to_numpy()
    width = int(finest.max()) + 1

    def indicator(mask: np.ndarray) -> np.ndarray:
        row = np.zeros(width)
        row[np.unique(finest[mask])] = 1.0
        return row

    leaks, equations, left_out = [], [], []
    for columns in GROUPINGS:
        published = {tuple(r[c] for c in columns): r for r in tables[columns].to_dict("records")}
        groups = rows.groupby(list(columns)) if columns else [((), rows)]
        for key, members in groups:
            key = key if isinstance(key, tuple) else (key,)
            mask = rows.index.isin(members.index)
            name = f"{dict(zip(columns, key, strict=True))}"
            if key not in published:
                left_out.append((name, indicator(mask)))
                continue
            row = published.pop(key)
            if row["users"] < k or row["users"] != members["user_id"].nunique():
                leaks.append(f"{name} is published with {row['users']} people")
            if row["count"] != len(members):
                leaks.append(f"{name} is published with a wrong count")
            equations.append(indicator(mask))
        leaks.extend(f"{columns} publishes a group that does not exist: {r}" for r in published)
    if equations:
        matrix = np.stack(equations).T
        for name, target in left_out:
            solution = np.linalg.lstsq(matrix, target, rcond=None)[0]
            if np.linalg.norm(matrix @ solution - target) < 1e-6:
                leaks.append(f"{name} is left out but follows from the published counts")
    return leaks


def all_tables(rows: pd.DataFrame, k: int = MIN_USERS) -> dict[tuple[str, ...], pd.DataFrame]:
    """What the analyst sees for every grouping."""
    return {columns: aggregate_cohort(rows, columns, k) for columns in GROUPINGS}


def _rows(spec: list[tuple[int, str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(spec, columns=["user_id", "month", "age_band", "sex", "finding"])


def _users(
    n: int,
    finding: str = "pneumonia",
    month: str = "2026-01",
    first: int = 0,
    sex: str = "F",
    age_band: str = "40-59",
) -> list:
    return [(first + i, month, age_band, sex, finding) for i in range(n)]


def test_group_of_nine_users_is_left_out() -> None:
    table = aggregate_cohort(_rows(_users(9)), ["finding"])
    assert table.empty and list(table.columns) == ["finding", "count", "users"]


def test_group_of_ten_users_is_shown() -> None:
    table = aggregate_cohort(_rows(_users(10)), ["finding"])
    assert table.to_dict("records") == [{"finding": "pneumonia", "count": 10, "users": 10}]


def test_one_user_with_many_results_counts_once_towards_the_threshold() -> None:
    # Nine people, one of whom stored 50 results: still fewer than ten people.
    rows = _rows(_users(9) + [(0, "2026-01", "40-59", "F", "pneumonia")] * 49)
    assert aggregate_cohort(rows, ["finding"]).empty
    # With a tenth person the group is shown, and counts every result.
    rows = _rows(_users(10) + [(0, "2026-01", "40-59", "F", "pneumonia")] * 49)
    assert aggregate_cohort(rows, ["finding"]).to_dict("records") == [
        {"finding": "pneumonia", "count": 59, "users": 10}
    ]


def test_a_lone_small_group_takes_its_only_sibling_with_it() -> None:
    # The total (15) minus covid19 (12) would give pneumonia (3), so both are left out.
    rows = _rows(_users(12, "covid19") + _users(3, "pneumonia", first=100))
    assert aggregate_cohort(rows, ["finding"]).empty
    assert aggregate_cohort(rows, []).to_dict("records") == [{"count": 15, "users": 15}]
    assert find_leaks(rows, all_tables(rows)) == []


def test_complementary_suppression_takes_the_next_smallest_group() -> None:
    rows = _rows(
        _users(30, "none")
        + _users(20, "covid19", first=100)
        + _users(12, "bacterial_pneumonia", first=200)
        + _users(3, "pneumonia", first=300)
    )
    table = aggregate_cohort(rows, ["finding"])
    # pneumonia (3) and the next smallest, bacterial (12), are left out: together 15 people.
    assert table["finding"].tolist() == ["covid19", "none"]
    assert "<" not in table.to_string()


def test_left_out_groups_must_hold_ten_people_together() -> None:
    rows = _rows(
        _users(30, "none")
        + _users(20, "covid19", first=100)
        + _users(3, "pneumonia", first=200)
        + _users(4, "viral_pneumonia", first=300)
    )
    # Two left out with 7 people together would still show that 7 results are viral or
    # pneumonia, so the next smallest goes too.
    assert aggregate_cohort(rows, ["finding"])["finding"].tolist() == ["none"]


def test_single_outlier_nothing_about_him_is_derivable() -> None:
    """One man among many women: no grouping, alone or combined with any other, shows him."""
    women = (
        _users(14, "pneumonia", "2026-01")
        + _users(13, "none", "2026-02", first=100, age_band="18-39")
        + _users(11, "pneumonia", "2026-02", first=200, age_band="60-79")
    )
    man = [(999, "2026-01", "40-59", "M", "pneumonia")]
    rows = _rows(women + man)
    tables = all_tables(rows)
    assert find_leaks(rows, tables) == []
    for columns, table in tables.items():
        if "sex" in columns:
            assert "M" not in set(table["sex"]), columns
    # The headline tables stay useful: the man hides among the 25 people with pneumonia.
    assert tables[("finding",)].set_index("finding")["users"].to_dict() == {
        "none": 13,
        "pneumonia": 26,
    }


def test_differencing_attack_against_totals_fails_on_every_grouping() -> None:
    rng = np.random.default_rng(3)
    n = 400
    rows = pd.DataFrame(
        {
            "user_id": rng.integers(0, 150, n),
            "month": rng.choice(["2026-01", "2026-02", "2026-03"], n),
            "age_band": rng.choice(
                ["18-39", "40-59", "60-79", "unknown"], n, p=[0.4, 0.4, 0.15, 0.05]
            ),
            "sex": rng.choice(["F", "M", "unknown"], n, p=[0.6, 0.38, 0.02]),
            "finding": rng.choice(
                ["pneumonia", "none", "covid19", "abstained"], n, p=[0.4, 0.4, 0.15, 0.05]
            ),
        }
    )
    tables = all_tables(rows)
    assert find_leaks(rows, tables) == []
    # The same attack breaks primary suppression alone (small groups left out, nothing else).
    primary = {c: t[t["users"] >= MIN_USERS] for c, t in all_tables(rows, k=1).items()}
    assert any("follows from the published counts" in leak for leak in find_leaks(rows, primary))


def test_column_order_follows_by() -> None:
    rows = _rows(_users(10, month="2026-01") + _users(10, month="2026-02", first=50))
    table = aggregate_cohort(rows, ["month", "finding"])
    assert list(table.columns) == ["month", "finding", "count", "users"]
    assert table["count"].tolist() == [10, 10]
    reverse = aggregate_cohort(rows, ["finding", "month"])
    assert reverse[["month", "finding", "count", "users"]].equals(table)


def test_output_never_contains_user_ids() -> None:
    table = aggregate_cohort(_rows(_users(15)), ["finding", "sex"])
    assert "user_id" not in table.columns


def test_empty_by_gives_one_total_row() -> None:
    table = aggregate_cohort(_rows(_users(11)), [])
    assert table.to_dict("records") == [{"count": 11, "users": 11}]


def test_missing_values_form_an_unknown_group() -> None:
    rows = _rows(_users(10))
    rows["age_band"] = None
    table = aggregate_cohort(rows, ["age_band"])
    assert table["age_band"].tolist() == ["unknown"]
    assert table["count"].tolist() == [10]


def test_grouping_by_user_id_is_refused() -> None:
    with pytest.raises(ValueError):
        aggregate_cohort(_rows(_users(10)), ["user_id"])


def test_threshold_is_configurable() -> None:
    assert aggregate_cohort(_rows(_users(4)), ["finding"], min_users=5).empty
    assert len(aggregate_cohort(_rows(_users(5)), ["finding"], min_users=5)) == 1


@pytest.mark.parametrize(
    ("people", "shown"),
    [
        ({"F": 500, "M": 1}, set()),
        ({"F": 500, "M": 1, "unknown": 20}, {"F"}),
        ({"F": 30, "M": 12}, {"F", "M"}),
        ({"a": 30, "b": 20, "c": 3, "d": 4}, {"a"}),
        ({"a": 30, "b": 20, "c": 3, "d": 8}, {"a", "b"}),
    ],
)
def test_suppress_categories(people: dict[str, int], shown: set[str]) -> None:
    groups = {
        name: set(range(1000 * i, 1000 * i + n)) for i, (name, n) in enumerate(people.items())
    }
    assert suppress(groups) == shown


def test_figure_plots_only_published_groups() -> None:
    rows = _rows(_users(12, "covid19") + _users(15, "pneumonia", first=100))
    fig = cohort_figure(aggregate_cohort(rows, ["finding"]), x="finding")
    assert isinstance(fig, go.Figure)
    assert sorted(fig.data[0].y.tolist()) == [12, 15]
