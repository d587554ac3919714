"""How one classification is put into words and a chart (no Streamlit here)."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go

from core.findings import (
    FINDING_LABELS,
    FINDINGS,
    is_flagged,
    threshold_for,
)


def probability_figure(
    probabilities: Mapping[str, float], thresholds: Mapping[str, float] | None
) -> go.Figure:
    """Horizontal bars of each finding's probability with its threshold marked.

    Args:
        probabilities: Probability per finding.
        thresholds: Decision threshold per finding (see ``core.findings.threshold_for``).

    Returns:
        A plotly figure.
    """
    labels = [FINDING_LABELS[f] for f in FINDINGS]
    values = [probabilities[f] for f in FINDINGS]
    levels = [threshold_for(thresholds, f) for f in FINDINGS]
    colours = [
        "#d62728" if is_flagged(value, level) else "#1f77b4"
        for value, level in zip(values, levels, strict=True)
    ]
    figure = go.Figure(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            marker_color=colours,
            text=[f"{v:.0%}" for v in values],
            textposition="outside",
            name="Probability",
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=levels,
            y=labels,
            mode="markers",
            marker={"symbol": "line-ns-open", "size": 28, "line": {"width": 3}, "color": "black"},
            name="Decision threshold",
            hovertemplate="Threshold for %{y}: %{x:.1%}<extra></extra>",
        )
    )
    figure.update_layout(
        xaxis={"range": [0, 1.1], "tickformat": ".0%", "title": "Model probability"},
        yaxis={"autorange": "reversed"},
        height=260,
        margin={"l": 10, "r": 10, "t": 10, "b": 40},
        legend={"orientation": "h", "y": -0.35},
    )
    return figure
