"""Longitudinal view of one patient's scans: tidy frame, red flags, model-version changes, figure.

Works on the ``ScanSummary`` / ``ResultRecord`` objects returned by
``storage.scans.list_scans`` (read through their attributes only, so this
module does not import storage). Every plotted probability keeps the model
version that produced it, so that a model update is never read as a change in
disease: per scan the result of the current model is used when present, else
the latest one, and the figure marks each point where the version changes.

Like is compared with like: PA, AP and AP supine films differ systematically, so each finding
gets one line per projection, points are never joined across projections, and a rise is only
measured against an earlier day's film of the same projection scored by the same model
version. Side (lateral) films are never scored, so they are never plotted; films whose view is
unknown are plotted as unjoined points and never compared.
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
from core.labels import format_day
from core.views import FRONTAL_VIEWS, VIEW_LABELS, View, is_frontal
from core.words import plural

#: Default rise, in absolute probability, since the previous scan that raises a red flag.
DEFAULT_RISE_MARGIN = 0.15

FRAME_COLUMNS: tuple[str, ...] = (
    "scan_id",
    "scan_date",
    "filename",
    "view",
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


#: ``{scan_id: findings}`` left off the timeline and out of red flags, for instance findings
#: outside the population they were validated for.
Excluded = Mapping[int, frozenset[str]]


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

    @property
    def view(self) -> View: ...


#: Line style per projection, so that the lines of one finding stay apart by projection.
VIEW_DASHES: dict[View, str] = {View.PA: "solid", View.AP: "dash", View.AP_SUPINE: "dot"}


def is_plotted(scan: ScanLike) -> bool:
    """Whether a scan's results belong on the timeline: every view but a side view.

    A side view scored before views were recorded keeps its old result in the record, but
    the frontal model's numbers on it mean nothing, so it is not plotted nor flagged.
    """
    return scan.view is not View.LATERAL


def is_comparable_view(view: View) -> bool:
    """Whether films of this view may be compared with each other (a known frontal view)."""
    return view in FRONTAL_VIEWS


def same_day_partners(summaries: Iterable[ScanLike]) -> dict[int, list[ScanLike]]:
    """For each scan, the other scans taken on the same day (any view).

    Args:
        summaries: The patient's scans.

    Returns:
        ``{scan_id: [other scans of that date]}`` for scans that share their date.
    """
    by_date: dict[date, list[ScanLike]] = {}
    for scan in sort_scans(summaries):
        by_date.setdefault(scan.scan_date, []).append(scan)
    return {
        scan.id: [other for other in group if other.id != scan.id]
        for group in by_date.values()
        if len(group) > 1
        for scan in group
    }


def same_day_note(partners: Sequence[ScanLike]) -> str:
    """One sentence naming the other films of the same day, e.g. for a hover or a table."""
    views = "; ".join(VIEW_LABELS[partner.view] for partner in partners)
    return f"Taken the same day as {plural(len(partners), 'other film')}: {views}."


def previous_comparable(summaries: Iterable[ScanLike], scan: ScanLike) -> ScanLike | None:
    """The latest scan before ``scan``'s day of the same known frontal projection, if any.

    Args:
        summaries: The patient's scans.
        scan: The scan to find a baseline for.

    Returns:
        The baseline, or ``None`` when ``scan`` is not of a known frontal view or no earlier
        day has a film of its projection.
    """
    if not is_comparable_view(scan.view):
        return None
    earlier = [
        other
        for other in sort_scans(summaries)
        if other.view is scan.view and other.scan_date < scan.scan_date
    ]
    return earlier[-1] if earlier else None


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
    scan: ScanLike, result: ResultLike, current_version: str | None, skipped: frozenset[str]
) -> list[dict[str, Any]]:
    rows = []
    for finding in FINDINGS:
        if finding not in result.probabilities or finding in skipped:
            continue
        probability = float(result.probabilities[finding])
        threshold = result_threshold(result, finding)
        rows.append(
            {
                "scan_id": scan.id,
                "scan_date": pd.Timestamp(scan.scan_date),
                "filename": scan.filename,
                "view": View(scan.view).value,
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
    excluded: Excluded | None = None,
) -> pd.DataFrame:
    """Build the tidy frame behind the timeline: one row per scan (or result) and finding.

    Args:
        summaries: The patient's scans (``ScanSummary``), any order.
        current_version: Version of the model in use now, if known.
        all_results: ``False`` keeps the one result chosen by
            :func:`select_result` per scan (what the chart plots); ``True``
            keeps every stored result, so older scores stay visible and
            labelled after a re-score.
        excluded: Findings per scan left out of the frame.

    Returns:
        A frame with :data:`FRAME_COLUMNS`, sorted by scan date, scan id,
        result id and finding order. Scans without any result and side views
        (:func:`is_plotted`) are left out.
    """
    rows: list[dict[str, Any]] = []
    for scan in sort_scans(summaries):
        if not is_plotted(scan):
            continue
        if all_results:
            chosen = list(scan.results)
        else:
            picked = select_result(scan.results, current_version)
            chosen = [] if picked is None else [picked]
        for result in chosen:
            rows.extend(
                _rows_for(scan, result, current_version, (excluded or {}).get(scan.id, frozenset()))
            )
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
        if not is_plotted(scan):
            continue
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


def red_flags(
    summaries: Iterable[ScanLike],
    thresholds: Mapping[str, float] | None = None,
    margin: float = DEFAULT_RISE_MARGIN,
    current_version: str | None = None,
    *,
    excluded: Excluded | None = None,
) -> dict[int, list[str]]:
    """Flag findings above their threshold, or rising fast since an earlier comparable film.

    A rise is measured like with like only: against the latest film of an earlier day of the
    same known frontal projection (PA, AP or AP supine) that has a usable result, and only
    when both results come from the same model version (across versions the numbers are not
    on the same scale). Films of the same day are never compared with each other, and films
    of unknown view with nothing. Side views are neither flagged nor used as a baseline.
    Results where the model abstained are not flagged and not used as a baseline.

    Args:
        summaries: The patient's scans, any order.
        thresholds: Fallback decision thresholds per finding (see :func:`result_threshold`).
        margin: Rise in absolute probability (0.15 = 15 points) that raises a
            flag; a rise must be strictly greater.
        current_version: Version of the model in use now, if known.
        excluded: Findings per scan that raise no flag.

    Returns:
        ``{scan_id: [reason, ...]}`` for flagged scans only, each reason one
        plain sentence, e.g. ``"Pneumonia rose from 12% to 41% since the PA film of
        2 Mar 2026."``.

    Raises:
        ValueError: ``margin`` is not in (0, 1).
    """
    if not 0 < margin < 1:
        raise ValueError("The rise margin must be between 0 and 1.")
    flags: dict[int, list[str]] = {}
    # The latest usable film per projection from earlier days, and those of the current day.
    earlier_days: dict[View, tuple[ScanLike, ResultLike]] = {}
    this_day: dict[View, tuple[ScanLike, ResultLike]] = {}
    day: date | None = None
    for scan in sort_scans(summaries):
        if scan.scan_date != day:
            earlier_days.update(this_day)
            this_day, day = {}, scan.scan_date
        result = select_result(scan.results, current_version)
        if not is_plotted(scan) or result is None or result.abstained:
            continue
        baseline = earlier_days.get(scan.view) if is_comparable_view(scan.view) else None
        skipped = (excluded or {}).get(scan.id, frozenset())
        reasons: list[str] = []
        for finding in FINDINGS:
            if finding not in result.probabilities or finding in skipped:
                continue
            label = FINDING_LABELS[finding]
            value = float(result.probabilities[finding])
            threshold = result_threshold(result, finding, thresholds)
            if is_flagged(value, threshold):
                reasons.append(
                    f"{label} is at {format_percent(value)}, at or above its decision threshold "
                    f"of {format_percent(threshold)}."
                )
            if baseline is not None:
                prev_scan, prev_result = baseline
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
                            f"since the {scan.view.value} film of "
                            f"{format_day(prev_scan.scan_date)}."
                        )
        if reasons:
            flags[scan.id] = reasons
        if is_comparable_view(scan.view):
            this_day[scan.view] = (scan, result)
    return flags


def _hover_rows(
    part: pd.DataFrame, flags: Mapping[int, list[str]], same_day: Mapping[int, str]
) -> np.ndarray:
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
        if scan_id in same_day:
            notes.append(same_day[scan_id])
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
    same_day: Mapping[int, str] | None = None,
) -> go.Figure:
    """Plot each finding's probability against scan date, on a log-odds axis, per projection.

    Probabilities near 0 or 1 barely move on a linear axis even when the model's evidence
    changes a lot, so the y axis is the log-odds (which do not saturate), labelled in percent
    (1%, 10%, 50%, 90%, 99% ...); the hover shows the probability itself.

    One WebGL line per finding and projection (solid PA, dashed AP, dotted AP supine; films of
    unknown view are unjoined points), never joined across projections, a marker per scan (a diamond
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
        same_day: ``{scan_id: sentence}`` for films taken the same day as others (see
            :func:`same_day_note`), shown in the hover and marked above the chart.

    Returns:
        The figure, y axis in log-odds labelled in percent.
    """
    flags = flags or {}
    same_day = same_day or {}
    fig = go.Figure()
    for finding in FINDINGS:
        part = frame[frame["finding"] == finding] if not frame.empty else frame
        if part.empty:
            continue
        _add_finding_traces(fig, finding, part, flags, same_day, current_version)
        colour = FINDING_COLOURS[finding]
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
    _mark_same_days(fig, frame, same_day)
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


def _add_finding_traces(
    fig: go.Figure,
    finding: str,
    part: pd.DataFrame,
    flags: Mapping[int, list[str]],
    same_day: Mapping[int, str],
    current_version: str | None,
) -> None:
    """One trace per projection for one finding: points of two projections are never joined."""
    colour = FINDING_COLOURS[finding]
    # The projection is named in the legend only when the chart holds more than one.
    alone = part["view"].nunique() == 1
    for view in View:
        rows = part[part["view"] == view.value]
        if rows.empty:
            continue
        symbols = [
            "x"
            if abstained
            else "diamond"
            if scan_id in flags
            else "circle"
            if (current_version is None or version == current_version)
            else "circle-open"
            for scan_id, version, abstained in zip(
                rows["scan_id"], rows["model_version"], rows["abstained"], strict=True
            )
        ]
        sizes = np.where(np.array(symbols) == "diamond", 12, 8)
        joined = is_comparable_view(view)
        fig.add_trace(
            go.Scattergl(
                x=rows["scan_date"],
                y=[log_odds(p) for p in rows["probability"]],
                text=[format_percent(p) for p in rows["probability"]],
                mode="lines+markers" if joined else "markers",
                name=FINDING_LABELS[finding]
                if alone
                else f"{FINDING_LABELS[finding]} ({view.value})",
                legendgroup=finding,
                line={"color": colour, "width": 2, "dash": VIEW_DASHES.get(view, "solid")},
                marker={"color": colour, "symbol": np.array(symbols, dtype=object), "size": sizes},
                customdata=_hover_rows(rows, flags, same_day),
                hovertemplate=(
                    f"<b>{FINDING_LABELS[finding]}</b>: %{{text}}<br>"
                    f"{VIEW_LABELS[view]}<br>"
                    "Scan date %{customdata[0]} (%{customdata[2]})<br>"
                    "Model %{customdata[1]}<br>%{customdata[3]}<extra></extra>"
                ),
            )
        )


def _mark_same_days(fig: go.Figure, frame: pd.DataFrame, same_day: Mapping[int, str]) -> None:
    """A light band and a label above each date that has more than one film."""
    if frame.empty or not same_day:
        return
    shared = frame[frame["scan_id"].isin(list(same_day))]
    dates = sorted(set(shared["scan_date"]))
    for when in dates:
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


def timeline_table(
    frame: pd.DataFrame,
    flags: Mapping[int, list[str]] | None = None,
    same_day: Mapping[int, str] | None = None,
    *,
    with_model: bool = False,
) -> pd.DataFrame:
    """Shape the timeline frame for display: one row per scan and result, one column per finding.

    Args:
        frame: Output of :func:`timeline_frame` (either mode).
        flags: Output of :func:`red_flags`.
        same_day: ``{scan_id: sentence}`` for films taken the same day as others.
        with_model: Add a ``Model`` column (e.g. ``v1.2.0``), for the details view that
            lists older models' results too; patients read the main table without it.

    Returns:
        Columns ``Scan date``, ``View``, (``Model``), one per finding label (percent
        strings), ``Note`` (abstention, same-day films) and ``Red flags``; newest scan first.
    """
    flags = flags or {}
    same_day = same_day or {}
    labels = [FINDING_LABELS[f] for f in FINDINGS]
    # No file name: patients know a film by its date and view (a DICOM name means nothing).
    columns = [
        "Scan date",
        "View",
        *(["Model"] if with_model else []),
        *labels,
        "Note",
        "Red flags",
    ]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    keys = ["scan_id", "result_id"]
    wide = frame.pivot_table(index=keys, columns="label", values="probability", aggfunc="first")
    meta = frame.drop_duplicates(keys).set_index(keys)
    table = pd.DataFrame(
        {
            "Scan date": pd.to_datetime(meta["scan_date"]).dt.date.map(date.isoformat),
            "View": meta["view"].map(lambda v: VIEW_LABELS[View(v)]),
        },
        index=meta.index,
    )
    if with_model:
        table["Model"] = meta["model_version"].astype(str).map(format_version)
    for label in labels:
        values = (
            wide[label].reindex(meta.index)
            if label in wide.columns
            else pd.Series(float("nan"), index=meta.index)
        )
        table[label] = values.map(lambda v: "" if pd.isna(v) else format_percent(float(v)))
    table["Note"] = [
        " ".join(
            part
            for part in ("model unsure" if abstained else "", same_day.get(scan_id, ""))
            if part
        )
        for (scan_id, _), abstained in zip(meta.index, meta["abstained"], strict=True)
    ]
    table["Red flags"] = [" ".join(flags.get(scan_id, [])) for scan_id, _ in meta.index]
    table = table.reset_index(drop=True)[columns]
    return table.iloc[::-1].reset_index(drop=True)
