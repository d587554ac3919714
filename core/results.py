"""How one classification is put into words and a chart (no Streamlit here)."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go

from core.findings import FINDING_LABELS, FINDINGS


def top_finding_sentence(probabilities: Mapping[str, float], thresholds: Mapping[str, float]) -> str:
    """The headline of a result in plain words.

    Args:
        probabilities: Probability per finding.
        thresholds: Decision threshold per finding.

    Returns:
        One sentence naming the highest finding above its threshold, or saying none is.
    """
    above = [f for f in FINDINGS if probabilities[f] >= thresholds[f]]
    if not above:
        return "No finding reached the level at which the model suggests a closer look."
    top = max(above, key=lambda f: probabilities[f] - thresholds[f])
    others = [FINDING_LABELS[f].lower() for f in above if f != top]
    sentence = (
        f"The model's strongest signal is {FINDING_LABELS[top].lower()} "
        f"({probabilities[top]:.0%}, above its level of {thresholds[top]:.0%})"
    )
    if others:
        sentence += f"; also above their level: {', '.join(others)}"
    return sentence + "."


def probability_figure(probabilities: Mapping[str, float], thresholds: Mapping[str, float]) -> go.Figure:
    """Horizontal bars of each finding's probability with its threshold marked.

    Args:
        probabilities: Probability per finding.
        thresholds: Decision threshold per finding.

    Returns:
        A plotly figure.
    """
    labels = [FINDING_LABELS[f] for f in FINDINGS]
    values = [probabilities[f] for f in FINDINGS]
    colours = ["#d62728" if probabilities[f] >= thresholds[f] else "#1f77b4" for f in FINDINGS]
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
            x=[thresholds[f] for f in FINDINGS],
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
