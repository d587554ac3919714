"""The timeline of one patient's scans: the table, the chart and the details, from readings.

Every number plotted or tabled here is the one its scan's reading shows
(``core.scan_reading``): the current model's result of a frontal film whose model was sure.
Like is compared with like: PA, AP and AP supine films differ systematically, so each finding
gets one line per projection and points are never joined across projections. Side views, films
of unknown view, films the model was unsure about and films awaiting re-scoring have no point;
the table says why. Every stored result, older models' included, stays in the details table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.findings import FINDING_LABELS, FINDINGS, log_odds
from core.labels import format_day
from core.scan_reading import ScanLike, ScanReading, ScanStatus
from core.views import FRONTAL_VIEWS, VIEW_LABELS, View, is_frontal

FRAME_COLUMNS: tuple[str, ...] = (
    "scan_id",
    "scan_date",
    "view",
    "finding",
    "label",
    "probability",
    "threshold",
    "flagged",
    "greyed",
    "view_uncertain",
    "model_version",
)

#: One colour per finding, stable across charts (colour-blind-safe Okabe-Ito hues).
FINDING_COLOURS: dict[str, str] = {
    "pneumonia": "#0072B2",
    "bacterial_pneumonia": "#E69F00",
    "viral_pneumonia": "#009E73",
    "covid19": "#CC79A7",
}


#: Line style per projection, so that the lines of one finding stay apart by projection.
VIEW_DASHES: dict[View, str] = {View.PA: "solid", View.AP: "dash", View.AP_SUPINE: "dot"}


def is_comparable_view(view: View) -> bool:
    """Whether films of this view may be compared with each other (a known frontal view)."""
    return view in FRONTAL_VIEWS


def format_version(version: str) -> str:
    """Write a model version the way users see it (``"2"`` -> ``"v2"``, ``"v2"`` unchanged).

    Args:
        version: Version string as stored with a result.

    Returns:
        The version prefixed with ``v`` once.
    """
    return version if version.lower().startswith("v") else f"v{version}"


def format_percent(probability: float) -> str:
    """Format a probability as a whole percentage (``0.414`` -> ``"41%"``).

    Args:
        probability: Value in [0, 1].

    Returns:
        The rounded percentage with a percent sign.
    """
    return f"{probability:.0%}"


def sort_scans(summaries: Iterable[ScanLike]) -> list[ScanLike]:
    """Order scans by scan date, then id (several scans can share a date).

    Args:
        summaries: Scans in any order.

    Returns:
        A new list, oldest scan first.
    """
    return sorted(summaries, key=lambda s: (s.scan_date, s.id))


def scans_needing_rescore(summaries: Iterable[ScanLike], current_version: str) -> list[int]:
    """List the frontal scans that have no result from the current model.

    Side views and scans of unknown view are never scored, so they are never listed.

    Args:
        summaries: The patient's scans.
        current_version: Version of the model in use now.

    Returns:
        Scan ids, oldest scan first.
    """
    return [
        scan.id
        for scan in sort_scans(summaries)
        if is_frontal(scan.view)
        and not any(r.model_version == current_version for r in scan.results)
    ]


def timeline_frame(
    readings: Iterable[ScanReading], *, include_greyed: bool = False
) -> pd.DataFrame:
    """The tidy frame behind the chart: one row per plotted scan and finding.

    Args:
        readings: The patient's readings (``core.scan_reading.read_scans``).
        include_greyed: Also the findings learned from other patients than this one (greyed
            on the chart); by default they are left out, as every reading plots them.

    Returns:
        A frame with :data:`FRAME_COLUMNS`, oldest scan first, findings in their order. Scans
        without numbers have no row.
    """
    rows: list[dict[str, Any]] = []
    for reading in sorted(readings, key=lambda r: (r.scan_date, r.scan_id)):
        for item in reading.findings:
            if not (item.plotted or (include_greyed and item.greyed)):
                continue
            rows.append(
                {
                    "scan_id": reading.scan_id,
                    "scan_date": pd.Timestamp(reading.scan_date),
                    "view": reading.view.value,
                    "finding": item.finding,
                    "label": item.label,
                    "probability": item.value,
                    "threshold": item.threshold,
                    "flagged": item.flagged,
                    "greyed": item.greyed,
                    "view_uncertain": reading.status is ScanStatus.VIEW_UNCERTAIN,
                    "model_version": reading.model_version,
                }
            )
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))


def _hover_rows(part: pd.DataFrame, by_id: Mapping[int, ScanReading]) -> np.ndarray:
    rows = []
    for scan_id in part["scan_id"]:
        reading = by_id[int(scan_id)]
        notes = [*reading.flags]
        if reading.status is ScanStatus.VIEW_UNCERTAIN and reading.reason:
            notes.append(reading.reason)
        if reading.same_day:
            notes.append(reading.same_day)
        rows.append(
            [reading.label, format_version(reading.model_version or ""), "<br>".join(notes)]
        )
    # A numpy array is validated by plotly in one step; a nested list is walked item by item.
    return np.array(rows, dtype=object).reshape(len(rows), 3)


#: Probabilities labelled on the timeline's log-odds axis.
_AXIS_TICKS = (0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999)


def timeline_figure(frame: pd.DataFrame, readings: Sequence[ScanReading]) -> go.Figure:
    """Plot each finding's probability against scan date, on a log-odds axis, per projection.

    Probabilities near 0 or 1 barely move on a linear axis even when the model's evidence
    changes a lot, so the y axis is the log-odds (which do not saturate), labelled in percent;
    the hover shows the probability itself.

    One WebGL line per finding and projection (solid PA, dashed AP, dotted AP supine), never
    joined across projections; a marker per scan (a diamond where the scan needs attention, an
    open circle where its view is uncertain, which is never joined to a line); each finding's
    level as a dotted line of the same colour; greyed findings drawn faint.

    Args:
        frame: Output of :func:`timeline_frame`.
        readings: The readings the frame came from (for the hover's sentences).

    Returns:
        The figure.
    """
    by_id = {reading.scan_id: reading for reading in readings}
    fig = go.Figure()
    for finding in FINDINGS:
        part = frame[frame["finding"] == finding]
        if part.empty:
            continue
        _add_finding_traces(fig, finding, part, by_id)
        colour = FINDING_COLOURS[finding]
        level = float(part["threshold"].iloc[-1])
        fig.add_hline(
            y=log_odds(level),
            line={"color": colour, "dash": "dot", "width": 1},
            annotation_text=f"{FINDING_LABELS[finding]} level {format_percent(level)}",
            annotation_position="top left",
            annotation_font={"size": 10, "color": colour},
        )
    _mark_same_days(fig, frame, by_id)
    fig.update_layout(
        xaxis_title="Scan date",
        # Days, never hours: films are dated by the day they were taken.
        xaxis={"tickformat": "%-d %b %Y"},
        yaxis_title="Model probability (log-odds scale)",
        yaxis={
            "range": [log_odds(_AXIS_TICKS[0] / 4), log_odds(1 - (1 - _AXIS_TICKS[-1]) / 4)],
            "tickvals": [log_odds(p) for p in _AXIS_TICKS],
            "ticktext": [f"{p * 100:g}%" for p in _AXIS_TICKS],
        },
        hovermode="closest",
        legend={"orientation": "h", "yanchor": "top", "y": -0.2},
        margin={"t": 40, "l": 60, "r": 20, "b": 40},
    )
    return fig


def _add_finding_traces(
    fig: go.Figure, finding: str, part: pd.DataFrame, by_id: Mapping[int, ScanReading]
) -> None:
    """One trace per projection for one finding: points of two projections are never joined."""
    colour = FINDING_COLOURS[finding]
    # The projection is named in the legend only when the chart holds more than one.
    alone = part["view"].nunique() == 1
    greyed = bool(part["greyed"].any())
    label = FINDING_LABELS[finding] + (" (greyed)" if greyed else "")
    for view in View:
        rows = part[part["view"] == view.value]
        if rows.empty:
            continue
        for uncertain, group in rows.groupby("view_uncertain", sort=True):
            symbols = [
                "circle-open"
                if uncertain
                else "diamond"
                if by_id[int(scan_id)].needs_attention
                else "circle"
                for scan_id in group["scan_id"]
            ]
            name = label if alone else f"{label} ({view.value})"
            fig.add_trace(
                go.Scattergl(
                    x=group["scan_date"],
                    y=[log_odds(p) for p in group["probability"]],
                    text=[format_percent(p) for p in group["probability"]],
                    # A film of uncertain view stands alone: it is no step of the course.
                    mode="markers" if uncertain else "lines+markers",
                    name=f"{name} (view uncertain)" if uncertain else name,
                    legendgroup=finding,
                    opacity=0.35 if greyed else 1.0,
                    line={"color": colour, "width": 2, "dash": VIEW_DASHES.get(view, "solid")},
                    marker={
                        "color": colour,
                        "symbol": np.array(symbols, dtype=object),
                        "size": np.where(np.array(symbols) == "diamond", 12, 8),
                    },
                    customdata=_hover_rows(group, by_id),
                    hovertemplate=(
                        f"<b>{FINDING_LABELS[finding]}</b>: %{{text}}<br>"
                        "Scan of %{customdata[0]}<br>"
                        "Model %{customdata[1]}<br>%{customdata[2]}<extra></extra>"
                    ),
                )
            )


def _mark_same_days(fig: go.Figure, frame: pd.DataFrame, by_id: Mapping[int, ScanReading]) -> None:
    """A label above each date that has more than one film."""
    if frame.empty:
        return
    shared = frame[[by_id[int(i)].same_day is not None for i in frame["scan_id"]]]
    for when in sorted(set(shared["scan_date"])):
        fig.add_annotation(
            x=pd.Timestamp(when),
            y=0,
            xref="x",
            yref="paper",
            text="same-day films",
            showarrow=False,
            yanchor="bottom",
            font={"size": 10, "color": "#555555"},
        )


def timeline_table(readings: Sequence[ScanReading]) -> pd.DataFrame:
    """One row per scan, newest first, as every page tables a patient's record.

    Args:
        readings: The patient's readings.

    Returns:
        Columns ``Scan date``, ``View``, ``Status``, one per finding label (the value shown, with
        "(greyed)" for a finding learned from other patients, empty without a number),
        ``Needs attention`` (the flag sentences) and ``Note`` (why there is no number, the
        view doubt, same-day films).
    """
    labels = [FINDING_LABELS[f] for f in FINDINGS]
    columns = ["Scan date", "View", "Status", *labels, "Needs attention", "Note"]
    rows = []
    for reading in sorted(readings, key=lambda r: (r.scan_date, r.scan_id), reverse=True):
        row: dict[str, str] = {
            "Scan date": format_day(reading.scan_date),
            "View": VIEW_LABELS[reading.view],
            "Status": reading.status_words,
        }
        for finding, label in zip(FINDINGS, labels, strict=True):
            item = reading.finding(finding)
            row[label] = (
                ""
                if item is None
                else format_percent(item.value) + (" (greyed)" if item.greyed else "")
            )
        row["Needs attention"] = " ".join(reading.flags)
        row["Note"] = " ".join(part for part in (reading.reason, reading.same_day) if part)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def details_table(scans: Iterable[ScanLike]) -> pd.DataFrame:
    """Every stored result of every scan, older models' included, newest scan first.

    Args:
        scans: The patient's scans.

    Returns:
        Columns ``Scan date``, ``View``, ``Model``, one per finding label, ``Note`` (the
        model's reason where it was unsure, with no number then).
    """
    labels = [FINDING_LABELS[f] for f in FINDINGS]
    columns = ["Scan date", "View", "Model", *labels, "Note"]
    rows = []
    for scan in reversed(sort_scans(scans)):
        for result in reversed(list(scan.results)):
            row = {
                "Scan date": format_day(scan.scan_date),
                "View": VIEW_LABELS[View(scan.view)],
                "Model": f"{result.model_name} {format_version(result.model_version)}",
                "Note": (result.abstain_reason or "model unsure") if result.abstained else "",
            }
            for finding, label in zip(FINDINGS, labels, strict=True):
                # An unsure model's numbers are shown nowhere, the details included.
                value = None if result.abstained else result.probabilities.get(finding)
                row[label] = "" if value is None else format_percent(float(value))
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)
