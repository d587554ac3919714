"""De-identified cohort counts with small-group suppression (pure pandas and numpy).

Storage decrypts the app's results and hands one row per stored result and flagged finding to
:func:`aggregate_cohort`; only the aggregate leaves storage. Ages are only ever handled as bands.

Suppression rule (k = :data:`MIN_USERS` distinct people)
--------------------------------------------------------
An analyst may ask for every grouping of :data:`GROUP_COLUMNS`: 16 tables, from the overall
total to finding x month x age band x sex. Result counts add up across them: a group of one
table is the sum of the groups of any finer table that share its values. So suppression is
decided for all 16 tables together, on every call, from the data alone; which groups are left
out never depends on the grouping asked for, and comparing tables gains nothing.

1. **Small groups.** A group with fewer than k distinct people is left out: it is not listed
   at all (no ``"<10"`` row), so not even its existence is shown.
2. **Lines.** The groups of a table that differ in one column only (a row or column of a
   cross-table) add up to one group of the coarser table, their total. When that total is
   published and the line has left-out groups, at least two of them must be left out and they
   must hold at least k distinct people together; otherwise the smallest published group of
   the line is left out too (the total itself when none is left).
3. **Any combination.** Every published count is a linear equation over the finest groups. No
   left-out count may be solvable from all published counts of all tables (an exact rank test,
   which also catches differencing through several totals at once). For each solvable one, its
   smallest published neighbour on a line is left out too (or, when it has none, the smallest
   published group that overlaps it).

Rules 2 and 3 repeat until neither leaves out anything more. People counts are treated as if
they added up like result counts; where one person sits in several groups they do not, and the
rule then protects more than needed. :func:`suppress_categories` applies rules 1 and 2 to one
list of categories whose total is published (the data-shift sample's sex and age mixes).
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

#: Columns an analyst may group by; ``user_id`` is deliberately absent.
GROUP_COLUMNS: tuple[str, ...] = ("finding", "month", "age_band", "sex")

#: Smallest number of distinct people in a published group (k).
MIN_USERS = 10

UNKNOWN = "unknown"

#: Projection residual under which a left-out count counts as solvable. Solvable counts leave
#: a residual of rounding size (about 1e-12 here); erring high only leaves out more.
_SOLVABLE = 1e-6


@dataclass(frozen=True)
class _Group:
    """One group of one table: its values, people, result count and finest groups."""

    columns: tuple[str, ...]
    key: tuple[str, ...]
    people: frozenset[Hashable]
    results: int
    cells: np.ndarray


def aggregate_cohort(
    rows: pd.DataFrame, by: Sequence[str], min_users: int = MIN_USERS
) -> pd.DataFrame:
    """Count stored results per group, leaving out groups that could single someone out.

    See the module docstring for the rule.

    Args:
        rows: One row per stored result and flagged finding, with columns
            ``user_id, month ('YYYY-MM'), age_band, sex, finding``.
        by: Grouping columns, a subset of :data:`GROUP_COLUMNS`; empty means one overall row.
        min_users: Distinct people (k) a group needs before it is shown.

    Returns:
        One row per published group with the ``by`` columns, ``count`` (results in the group)
        and ``users`` (distinct people), sorted by ``by``. Left-out groups are absent. Never
        contains ``user_id``.

    Raises:
        ValueError: ``by`` names a column outside :data:`GROUP_COLUMNS` or repeats one, or
            ``min_users`` is below 1.
        KeyError: ``rows`` lacks ``user_id`` or a column of :data:`GROUP_COLUMNS`.
    """
    by = list(by)
    unknown = [name for name in by if name not in GROUP_COLUMNS]
    if unknown:
        raise ValueError(f"Cannot group by {unknown}; allowed: {list(GROUP_COLUMNS)}.")
    if len(set(by)) != len(by):
        raise ValueError("Each grouping column may appear once.")
    if min_users < 1:
        raise ValueError("min_users must be at least 1.")
    missing = [name for name in ["user_id", *GROUP_COLUMNS] if name not in rows.columns]
    if missing:
        raise KeyError(f"Cohort rows lack columns {missing}")

    # Missing ages or sexes form their own group instead of silently vanishing.
    frame = rows[["user_id", *GROUP_COLUMNS]].copy()
    for name in GROUP_COLUMNS:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), UNKNOWN).astype(str)

    groups = _all_groups(frame)
    shown = _published(groups, min_users)
    columns = tuple(name for name in GROUP_COLUMNS if name in by)
    records = [
        dict(zip(columns, group.key, strict=True))
        | {"count": group.results, "users": len(group.people)}
        for index, group in enumerate(groups)
        if group.columns == columns and index in shown
    ]
    table = pd.DataFrame(records, columns=[*columns, "count", "users"])[[*by, "count", "users"]]
    return (table.sort_values(by) if by else table).reset_index(drop=True)


def suppress_categories(
    people: Mapping[str, AbstractSet[Hashable]], min_users: int = MIN_USERS
) -> set[str]:
    """Categories whose counts may be published next to their published total.

    Rules 1 and 2 of the module docstring on one line: categories with fewer than
    ``min_users`` people are left out, then the smallest published ones until the left-out
    categories are none, or at least two holding ``min_users`` people together.

    Args:
        people: Distinct people per category of one partition of a published total; include
            a category for unrecorded values, since its count follows from the total.
        min_users: Distinct people (k) a category needs before it is shown.

    Returns:
        The categories that may be published.
    """
    hidden = {name for name, who in people.items() if len(who) < min_users}
    shown = sorted(set(people) - hidden, key=lambda name: (len(people[name]), name))
    while shown and _exposed([people[name] for name in hidden], min_users):
        hidden.add(shown.pop(0))
    return set(shown)


def _exposed(left_out: Sequence[AbstractSet[Hashable]], min_users: int) -> bool:
    """Whether left-out groups whose sum is published can be told apart or are too small."""
    return bool(left_out) and (len(left_out) < 2 or len(frozenset().union(*left_out)) < min_users)


def _all_groups(frame: pd.DataFrame) -> list[_Group]:
    """Every group of every table the analyst can ask for, coarsest tables first."""
    finest = frame.groupby(list(GROUP_COLUMNS), sort=True).ngroup().to_numpy()
    users = frame["user_id"].to_numpy()
    groups = []
    for size in range(len(GROUP_COLUMNS) + 1):
        for columns in itertools.combinations(GROUP_COLUMNS, size):
            if columns:
                parts = frame.groupby(list(columns), sort=True).indices
            else:
                parts = {(): np.arange(len(frame))} if len(frame) else {}
            for key, positions in parts.items():
                groups.append(
                    _Group(
                        columns=columns,
                        key=key if isinstance(key, tuple) else (key,),
                        people=frozenset(users[positions].tolist()),
                        results=len(positions),
                        cells=np.unique(finest[positions]),
                    )
                )
    return groups


def _lines(groups: Sequence[_Group]) -> list[tuple[int, list[int]]]:
    """Each line as (its total's index, its groups' indices)."""
    index = {(group.columns, group.key): i for i, group in enumerate(groups)}
    lines: dict[tuple[int, str], list[int]] = {}
    for i, group in enumerate(groups):
        for j, column in enumerate(group.columns):
            coarser = (
                group.columns[:j] + group.columns[j + 1 :],
                group.key[:j] + group.key[j + 1 :],
            )
            lines.setdefault((index[coarser], column), []).append(i)
    return [(total, members) for (total, _), members in lines.items()]


def _published(groups: Sequence[_Group], min_users: int) -> set[int]:
    """Indices of the groups that may be published (rules 1 to 3)."""
    lines = _lines(groups)
    neighbours: dict[int, set[int]] = {i: set() for i in range(len(groups))}
    for _, members in lines:
        for i in members:
            neighbours[i].update(members)
    hidden = {i for i, group in enumerate(groups) if len(group.people) < min_users}
    while True:
        extra = _line_complements(groups, lines, hidden, min_users) or _solvable_complements(
            groups, neighbours, hidden
        )
        if not extra:
            return set(range(len(groups))) - hidden
        hidden |= extra


def _smallest(groups: Sequence[_Group], candidates: set[int]) -> int:
    return min(
        candidates,
        key=lambda i: (len(groups[i].people), groups[i].results, groups[i].columns, groups[i].key),
    )


def _line_complements(
    groups: Sequence[_Group], lines: list[tuple[int, list[int]]], hidden: set[int], min_users: int
) -> set[int]:
    """Rule 2: one more group to leave out for each exposed line."""
    extra = set()
    for total, members in lines:
        if total in hidden:
            continue
        if _exposed([groups[i].people for i in members if i in hidden], min_users):
            shown = {i for i in members if i not in hidden}
            extra.add(_smallest(groups, shown) if shown else total)
    return extra


def _solvable_complements(
    groups: Sequence[_Group], neighbours: dict[int, set[int]], hidden: set[int]
) -> set[int]:
    """Rule 3: one more group to leave out for each left-out count the published ones solve."""
    shown = [i for i in range(len(groups)) if i not in hidden]
    if not hidden or not shown:
        return set()
    width = 1 + max(int(group.cells.max()) for group in groups)
    equations = np.unique(np.stack([_indicator(groups[i], width) for i in shown]), axis=0)
    _, singular, vectors = np.linalg.svd(equations, full_matrices=False)
    rank = int((singular > singular[0] * max(equations.shape) * np.finfo(float).eps).sum())
    basis = vectors[:rank]
    left_out = sorted(hidden)
    targets = np.stack([_indicator(groups[i], width) for i in left_out])
    residuals = np.linalg.norm(targets - (targets @ basis.T) @ basis, axis=1)
    extra = set()
    for i in (i for i, residual in zip(left_out, residuals, strict=True) if residual < _SOLVABLE):
        # A solvable count overlaps some published group, so the fallback is never empty.
        candidates = neighbours[i] - hidden or {
            j for j in shown if np.intersect1d(groups[j].cells, groups[i].cells).size
        }
        extra.add(_smallest(groups, candidates))
    return extra


def _indicator(group: _Group, width: int) -> np.ndarray:
    row = np.zeros(width)
    row[group.cells] = 1.0
    return row


def cohort_figure(table: pd.DataFrame, x: str, color: str | None = None) -> go.Figure:
    """Bar chart of the published counts (left-out groups are simply absent).

    Args:
        table: Output of :func:`aggregate_cohort`.
        x: Column for the x axis (one of its ``by`` columns).
        color: Optional second ``by`` column for colour.

    Returns:
        The figure, with people per group in the hover text.
    """
    return px.bar(
        table,
        x=x,
        y="count",
        color=color,
        barmode="group",
        hover_data={"users": True},
        labels={"count": "Results", "users": "People"},
    )
