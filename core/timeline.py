"""Longitudinal view of one patient's scans: tidy frame, red flags, model-version changes, figure.

Works on the ``ScanSummary`` / ``ResultRecord`` objects returned by
``storage.scans.list_scans`` (read through their attributes only, so this
module does not import storage). Every plotted probability keeps the model
version that produced it, so that a model update is never read as a change in
disease: per scan the result of the current model is used when present, else
the latest one, and the figure marks each point where the version changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.findings import FINDING_LABELS, FINDINGS, is_flagged, log_odds, threshold_for

#: Default rise, in absolute probability, since the previous scan that raises a red flag.
DEFAULT_RISE_MARGIN = 0.15

FRAME_COLUMNS: tuple[str, ...] = (
    "scan_id",
    "scan_date",
    "filename",
    "finding",
    "label",
    "probability",
    "threshold",
    "above_threshold",
    "model_name",
    "model_version",
    "is_current_model",
    "abstained",
    "abstain_reason",
    "result_id",
    "result_created_at",
)

#: One colour per finding, stable across charts (colour-blind-safe Okabe-Ito hues).
FINDING_COLOURS: dict[str, str] = {
    "pneumonia": "#0072B2",
    "bacterial_pneumonia": "#E69F00",
    "viral_pneumonia": "#009E73",
    "covid19": "#CC79A7",
}


class ResultLike(Protocol):
    """The fields of ``storage.results.ResultRecord`` this module reads.

    Read-only properties, so frozen records match and their concrete field types
    (``dict``, ``list``) may be narrower than the ones declared here.
    """

    @property
    def id(self) -> int: ...

    @property
    def probabilities(self) -> Mapping[str, float]: ...

    @property
    def model_name(self) -> str: ...

    @property
    def model_version(self) -> str: ...

    @property
    def abstained(self) -> bool: ...

    @property
    def abstain_reason(self) -> str | None: ...

    @property
    def thresholds(self) -> Mapping[str, float]: ...


class ScanLike(Protocol):
    """The fields of ``storage.scans.ScanSummary`` this module reads (read-only, as above)."""

    @property
    def id(self) -> int: ...

    @property
    def scan_date(self) -> date: ...

    @property
    def filename(self) -> str: ...

    @property
    def results(self) -> Sequence[ResultLike]: ...


@dataclass(frozen=True)
class VersionChange:
    """A point on the timeline where the plotted model version differs from the previous scan's.

    Attributes:
        scan_id: First scan plotted with the new version.
        scan_date: Its scan date.
        previous_version: Version used for the scan before it.
        version: Version used from this scan on.
        label: Short text for the chart, e.g. ``"model updated to v2"``.
    """

    scan_id: int
    scan_date: date
    previous_version: str
    version: str
    label: str


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


def select_result(
    results: Sequence[ResultLike], current_version: str | None = None
) -> ResultLike | None:
    """Choose the result shown for a scan.

    Args:
        results: The scan's results, oldest first.
        current_version: Version of the model in use now, if known.

    Returns:
        The latest result of ``current_version`` when there is one, else the
        latest result of any version, else ``None`` (a scan never scored).
    """
    if not results:
        return None
    if current_version is not None:
        same = [r for r in results if r.model_version == current_version]
        if same:
            return same[-1]
    return results[-1]


def result_threshold(
    result: ResultLike, finding: str, fallback: Mapping[str, float] | None = None
) -> float:
    """Decision threshold that applies to one finding of one result.

    The thresholds stored with the result win, because they were calibrated for
    the model version that produced its probabilities; ``fallback`` (usually
    the current model's) fills in where the result has none, and
    ``core.findings.threshold_for`` decides when neither has one.

    Args:
        result: A stored result.
        finding: Finding name from ``core.findings.FINDINGS``.
        fallback: Thresholds used when the result stores none for ``finding``.

    Returns:
        The threshold in [0, 1].
    """
    stored = result.thresholds or {}
    return threshold_for(stored if finding in stored else fallback, finding)


def sort_scans(summaries: Iterable[ScanLike]) -> list[ScanLike]:
    """Order scans by scan date, then id (several scans can share a date).

    Args:
        summaries: Scans in any order.

    Returns:
        A new list, oldest scan first.
    """
    return sorted(summaries, key=lambda s: (s.scan_date, s.id))


def _rows_for(
    scan: ScanLike, result: ResultLike, current_version: str | None
) -> list[dict[str, Any]]:
    rows = []
    for finding in FINDINGS:
        if finding not in result.probabilities:
            continue
        probability = float(result.probabilities[finding])
        threshold = result_threshold(result, finding)
        rows.append(
            {
                "scan_id": scan.id,
                "scan_date": pd.Timestamp(scan.scan_date),
                "filename": scan.filename,
                "finding": finding,
                "label": FINDING_LABELS[finding],
                "probability": probability,
                "threshold": threshold,
                "above_threshold": is_flagged(probability, threshold),
                "model_name": result.model_name,
                "model_version": result.model_version,
                "is_current_model": current_version is not None
                and result.model_version == current_version,
                "abstained": bool(result.abstained),
                "abstain_reason": result.abstain_reason,
                "result_id": result.id,
                "result_created_at": getattr(result, "created_at", None),
            }
        )
    return rows


def timeline_frame(
    summaries: Iterable[ScanLike],
    current_version: str | None = None,
    *,
    all_results: bool = False,
) -> pd.DataFrame:
    """Build the tidy frame behind the timeline: one row per scan (or result) and finding.

    Args:
        summaries: The patient's scans (``ScanSummary``), any order.
        current_version: Version of the model in use now, if known.
        all_results: ``False`` keeps the one result chosen by
            :func:`select_result` per scan (what the chart plots); ``True``
            keeps every stored result, so older scores stay visible and
            labelled after a re-score.

    Returns:
        A frame with :data:`FRAME_COLUMNS`, sorted by scan date, scan id,
        result id and finding order. Scans without any result are left out.
    """
    rows: list[dict[str, Any]] = []
    for scan in sort_scans(summaries):
        if all_results:
            chosen = list(scan.results)
        else:
            picked = select_result(scan.results, current_version)
            chosen = [] if picked is None else [picked]
        for result in chosen:
            rows.extend(_rows_for(scan, result, current_version))
    frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    if frame.empty:
        return frame
    frame["finding_order"] = frame["finding"].map(FINDINGS.index)
    frame = frame.sort_values(["scan_date", "scan_id", "result_id", "finding_order"], kind="stable")
    return frame.drop(columns="finding_order").reset_index(drop=True)


def version_changes(
    summaries: Iterable[ScanLike], current_version: str | None = None
) -> list[VersionChange]:
    """Find where the plotted model version changes from one scan to the next.

    Args:
        summaries: The patient's scans, any order.
        current_version: Version of the model in use now, if known.

    Returns:
        One :class:`VersionChange` per change, in date order. A change to the
        current version (or to a later one when the current is unknown) reads
        "model updated to vX"; a change back to an older version (a scan not
        yet re-scored) reads "older model vX".
    """
    changes: list[VersionChange] = []
    previous: str | None = None
    for scan in sort_scans(summaries):
        result = select_result(scan.results, current_version)
        if result is None:
            continue
        version = result.model_version
        if previous is not None and version != previous:
            is_update = current_version is None or version == current_version
            shown = format_version(version)
            label = f"model updated to {shown}" if is_update else f"older model {shown}"
            changes.append(VersionChange(scan.id, scan.scan_date, previous, version, label))
        previous = version
    return changes


def scans_needing_rescore(summaries: Iterable[ScanLike], current_version: str) -> list[int]:
    """List the scans that have no result from the current model.

    Args:
        summaries: The patient's scans.
        current_version: Version of the model in use now.

    Returns:
        Scan ids, oldest scan first.
    """
    return [
        scan.id
        for scan in sort_scans(summaries)
        if not any(r.model_version == current_version for r in scan.results)
    ]


def red_flags(
    summaries: Iterable[ScanLike],
    thresholds: Mapping[str, float] | None = None,
    margin: float = DEFAULT_RISE_MARGIN,
    current_version: str | None = None,
) -> dict[int, list[str]]:
    """Flag findings above their threshold, or rising fast since the previous scan.

    A rise is only measured against the previous scored scan when both results
    come from the same model version: across versions the numbers are not on
    the same scale. Results where the model abstained are not flagged and are
    not used as a baseline, since their numbers are unreliable.

    Args:
        summaries: The patient's scans, any order.
        thresholds: Fallback decision thresholds per finding (see :func:`result_threshold`).
        margin: Rise in absolute probability (0.15 = 15 points) that raises a
            flag; a rise must be strictly greater.
        current_version: Version of the model in use now, if known.

    Returns:
        ``{scan_id: [reason, ...]}`` for flagged scans only, each reason one
        plain sentence, e.g. ``"Pneumonia rose from 12% to 41% since 2026-03-02."``.

    Raises:
        ValueError: ``margin`` is not in (0, 1).
    """
    if not 0 < margin < 1:
        raise ValueError("The rise margin must be between 0 and 1.")
    flags: dict[int, list[str]] = {}
    previous: tuple[ScanLike, ResultLike] | None = None
    for scan in sort_scans(summaries):
        result = select_result(scan.results, current_version)
        if result is None or result.abstained:
            continue
        reasons: list[str] = []
        for finding in FINDINGS:
            if finding not in result.probabilities:
                continue
            label = FINDING_LABELS[finding]
            value = float(result.probabilities[finding])
            threshold = result_threshold(result, finding, thresholds)
            if is_flagged(value, threshold):
                reasons.append(
                    f"{label} is at {format_percent(value)}, at or above its decision threshold "
                    f"of {format_percent(threshold)}."
                )
            if previous is not None:
                prev_scan, prev_result = previous
                if (
                    prev_result.model_version == result.model_version
                    and finding in prev_result.probabilities
                ):
                    before = float(prev_result.probabilities[finding])
                    # Rounded so that 0.40 - 0.25 counts as 0.15, not 0.1499999.
                    if round(value - before, 9) > margin:
                        reasons.append(
                            f"{label} rose from {format_percent(before)} "
                            f"to {format_percent(value)} "
                            f"since {prev_scan.scan_date.isoformat()}."
                        )
        if reasons:
            flags[scan.id] = reasons
        previous = (scan, result)
    return flags


def _hover_rows(part: pd.DataFrame, flags: Mapping[int, list[str]]) -> np.ndarray:
    rows = []
    for scan_id, scan_date, version, abstained, reason, filename in zip(
        part["scan_id"],
        part["scan_date"],
        part["model_version"],
        part["abstained"],
        part["abstain_reason"],
        part["filename"],
        strict=True,
    ):
        notes = list(flags.get(scan_id, []))
        if abstained:
            notes.append(f"The model was unsure about this image: {reason or 'no reason given'}.")
        rows.append(
            [
                pd.Timestamp(scan_date).date().isoformat(),
                format_version(str(version)),
                filename,
                "<br>".join(notes),
            ]
        )
    # A numpy array is validated by plotly in one step; a nested list is walked item by item.
    return np.array(rows, dtype=object).reshape(len(rows), 4)


#: Probabilities labelled on the timeline's log-odds axis.
_AXIS_TICKS = (0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999)


def timeline_figure(
    frame: pd.DataFrame,
    *,
    thresholds: Mapping[str, float] | None = None,
    flags: Mapping[int, list[str]] | None = None,
    changes: Sequence[VersionChange] = (),
    current_version: str | None = None,
) -> go.Figure:
    """Plot each finding's probability against scan date, on a log-odds axis.

    Probabilities near 0 or 1 barely move on a linear axis even when the model's evidence
    changes a lot, so the y axis is the log-odds (which do not saturate), labelled in percent
    (1%, 10%, 50%, 90%, 99% ...); the hover shows the probability itself.

    One WebGL line per finding (so 500 scans stay four traces), a marker per scan (a diamond
    where the scan is red-flagged, an open circle for a result of an older model, an ``x``
    where the model abstained), each finding's decision threshold as a dotted line of the same
    colour, and a vertical line wherever the model version changes.

    Args:
        frame: Output of :func:`timeline_frame` (one result per scan).
        thresholds: Thresholds to draw per finding; defaults to the latest
            threshold found in ``frame`` for each finding.
        flags: Output of :func:`red_flags`.
        changes: Output of :func:`version_changes`.
        current_version: Version of the model in use now, if known.

    Returns:
        The figure, y axis in log-odds labelled in percent.
    """
    flags = flags or {}
    fig = go.Figure()
    for finding in FINDINGS:
        part = frame[frame["finding"] == finding] if not frame.empty else frame
        if part.empty:
            continue
        colour = FINDING_COLOURS[finding]
        symbols = [
            "x"
            if abstained
            else "diamond"
            if scan_id in flags
            else "circle"
            if (current_version is None or version == current_version)
            else "circle-open"
            for scan_id, version, abstained in zip(
                part["scan_id"], part["model_version"], part["abstained"], strict=True
            )
        ]
        sizes = np.where(np.array(symbols) == "diamond", 12, 8)
        fig.add_trace(
            go.Scattergl(
                x=part["scan_date"],
                y=[log_odds(p) for p in part["probability"]],
                text=[format_percent(p) for p in part["probability"]],
                mode="lines+markers",
                name=FINDING_LABELS[finding],
                legendgroup=finding,
                line={"color": colour, "width": 2},
                marker={"color": colour, "symbol": np.array(symbols, dtype=object), "size": sizes},
                customdata=_hover_rows(part, flags),
                hovertemplate=(
                    f"<b>{FINDING_LABELS[finding]}</b>: %{{text}}<br>"
                    "Scan date %{customdata[0]} (%{customdata[2]})<br>"
                    "Model %{customdata[1]}<br>%{customdata[3]}<extra></extra>"
                ),
            )
        )
        if thresholds and finding in thresholds:
            level = float(thresholds[finding])
        else:
            level = float(part["threshold"].iloc[-1])
        fig.add_hline(
            y=log_odds(level),
            line={"color": colour, "dash": "dot", "width": 1},
            annotation_text=f"{FINDING_LABELS[finding]} threshold {format_percent(level)}",
            annotation_position="top left",
            annotation_font={"size": 10, "color": colour},
        )
    for change in changes:
        # Shape + annotation rather than add_vline(annotation_text=...), which
        # cannot place text on a date axis in every plotly release.
        when = pd.Timestamp(change.scan_date)
        fig.add_shape(
            type="line",
            x0=when,
            x1=when,
            xref="x",
            y0=0,
            y1=1,
            yref="paper",
            line={"color": "#555555", "dash": "dash", "width": 1},
        )
        fig.add_annotation(
            x=when,
            y=1,
            xref="x",
            yref="paper",
            text=change.label,
            showarrow=False,
            yanchor="bottom",
            font={"size": 11, "color": "#555555"},
        )
    fig.update_layout(
        xaxis_title="Scan date",
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


def timeline_table(
    frame: pd.DataFrame, flags: Mapping[int, list[str]] | None = None
) -> pd.DataFrame:
    """Shape the timeline frame for display: one row per scan and result, one column per finding.

    Args:
        frame: Output of :func:`timeline_frame` (either mode).
        flags: Output of :func:`red_flags`.

    Returns:
        Columns ``Scan date``, ``File``, ``Model``, one per finding label (percent
        strings), ``Note`` (abstention) and ``Red flags``; newest scan first.
    """
    flags = flags or {}
    labels = [FINDING_LABELS[f] for f in FINDINGS]
    columns = ["Scan date", "File", "Model", *labels, "Note", "Red flags"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    keys = ["scan_id", "result_id"]
    wide = frame.pivot_table(index=keys, columns="label", values="probability", aggfunc="first")
    meta = frame.drop_duplicates(keys).set_index(keys)
    table = pd.DataFrame(
        {
            "Scan date": pd.to_datetime(meta["scan_date"]).dt.date.map(date.isoformat),
            "File": meta["filename"],
            "Model": meta["model_version"].astype(str).map(format_version),
        },
        index=meta.index,
    )
    for label in labels:
        values = (
            wide[label].reindex(meta.index)
            if label in wide.columns
            else pd.Series(float("nan"), index=meta.index)
        )
        table[label] = values.map(lambda v: "" if pd.isna(v) else format_percent(float(v)))
    table["Note"] = meta["abstained"].map(lambda a: "model unsure" if a else "")
    table["Red flags"] = [" ".join(flags.get(scan_id, [])) for scan_id, _ in meta.index]
    table = table.reset_index(drop=True)[columns]
    return table.iloc[::-1].reset_index(drop=True)
