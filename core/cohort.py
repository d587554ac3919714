"""De-identified cohort counts with small-group suppression (pure pandas).

Storage decrypts the app's results and hands one row per stored result and
flagged finding to :func:`aggregate_cohort`; only the aggregate leaves storage.
A group is published only when at least ``min_users`` distinct people are in
it, so no count can single out a person; smaller groups read ``"<10"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

#: Columns an analyst may group by; ``user_id`` is deliberately absent.
GROUP_COLUMNS: tuple[str, ...] = ("finding", "month", "age_band", "sex")

#: Smallest group whose counts are shown.
MIN_USERS = 10

UNKNOWN = "unknown"


def suppressed_label(min_users: int = MIN_USERS) -> str:
    """The text shown instead of a count for groups below ``min_users`` (``"<10"``)."""
    return f"<{min_users}"


def aggregate_cohort(
    rows: pd.DataFrame, by: Sequence[str], min_users: int = MIN_USERS
) -> pd.DataFrame:
    """Count stored results per group, hiding groups with fewer than ``min_users`` people.

    Args:
        rows: One row per stored result and flagged finding, with columns
            ``user_id, month ('YYYY-MM'), age_band, sex, finding``.
        by: Grouping columns, a subset of :data:`GROUP_COLUMNS`; empty means
            one overall row.
        min_users: Distinct users a group needs before its counts are shown.

    Returns:
        One row per group with the ``by`` columns, ``count`` (results in the
        group) and ``users`` (distinct people), both as strings, ``"<10"``
        where suppressed. Never contains ``user_id``.

    Raises:
        ValueError: ``by`` names a column outside :data:`GROUP_COLUMNS`, or
            ``min_users`` is below 1.
        KeyError: ``rows`` lacks a needed column.
    """
    by = list(by)
    unknown = [name for name in by if name not in GROUP_COLUMNS]
    if unknown:
        raise ValueError(f"Cannot group by {unknown}; allowed: {list(GROUP_COLUMNS)}.")
    if len(set(by)) != len(by):
        raise ValueError("Each grouping column may appear once.")
    if min_users < 1:
        raise ValueError("min_users must be at least 1.")
    missing = [name for name in ["user_id", *by] if name not in rows.columns]
    if missing:
        raise KeyError(f"Cohort rows lack columns {missing}")

    # Missing ages or sexes form their own group instead of silently vanishing.
    frame = rows[["user_id", *by]].copy()
    for name in by:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), UNKNOWN).astype(str)

    if by:
        grouped = frame.groupby(by, sort=True)
        stats = pd.DataFrame(
            {"results": grouped.size(), "people": grouped["user_id"].nunique()}
        ).reset_index()
    else:
        stats = pd.DataFrame({"results": [len(frame)], "people": [frame["user_id"].nunique()]})

    hidden = stats["people"] < min_users
    label = suppressed_label(min_users)
    stats["count"] = stats["results"].astype(str).where(~hidden, label)
    stats["users"] = stats["people"].astype(str).where(~hidden, label)
    return stats[[*by, "count", "users"]].reset_index(drop=True)


def cohort_figure(table: pd.DataFrame, x: str, color: str | None = None) -> go.Figure:
    """Bar chart of the published counts; suppressed groups are drawn as zero-height bars.

    Args:
        table: Output of :func:`aggregate_cohort`.
        x: Column for the x axis (one of its ``by`` columns).
        color: Optional second ``by`` column for colour.

    Returns:
        The figure; hover text shows ``"<10"`` for suppressed groups.
    """
    plotted = table.assign(
        value=pd.to_numeric(table["count"], errors="coerce").fillna(0),
    )
    return px.bar(
        plotted,
        x=x,
        y="value",
        color=color,
        barmode="group",
        hover_data={"count": True, "users": True, "value": False},
        labels={"value": "Results"},
    )
