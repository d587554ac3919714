"""Model-performance report: read ``models/metrics.json`` and build tables and plotly figures.

The file is written by ``python -m models.evaluate``. Every reader here is
tolerant: a missing section yields an empty table or ``None`` rather than an
error, so a partial evaluation still shows what it measured, and nothing is
ever invented for what it did not.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.errors import UserError
from core.findings import FINDING_LABELS

#: Name of the evaluation report, written beside the checkpoint it evaluates.
METRICS_FILE = "metrics.json"

SOURCE_LABELS: dict[str, str] = {
    "kermany_test": "Kermany test (children)",
    "covid_test": "COVID-19 radiography test (adults)",
    "nih_adult_test": "NIH test (adults and adolescents)",
    "pooled_test": "All test sets pooled",
    "all_test": "All test sets",
    "unknown_age_test": "All test sets, scored without the patient's age",
}

#: Readable names of the populations the model is calibrated and judged for.
POPULATION_LABELS: dict[str, str] = {
    "child": "Children",
    "adult": "Adults",
    "unknown": "Age unknown",
}


class MetricsError(UserError, ValueError):
    """Raised when the metrics file exists but cannot be read as a report."""

    code = "metrics"
    default_message = "The evaluation report could not be read."


@dataclass(frozen=True)
class Target:
    """One goal the model must meet.

    Attributes:
        name: What is measured, in words.
        source: Evaluation source key (``None`` for top-level sections).
        finding: Finding key, or ``None``.
        metric: Metric key inside the entry.
        minimum: ``True`` when the measured value must be at least ``required``.
        required: The threshold value.
    """

    name: str
    source: str | None
    finding: str | None
    metric: str
    minimum: bool
    required: float


TARGETS: tuple[Target, ...] = (
    Target("Pneumonia AUC, Kermany test", "kermany_test", "pneumonia", "auc", True, 0.975),
    Target("Pneumonia accuracy, Kermany test", "kermany_test", "pneumonia", "accuracy", True, 0.93),
    Target("3-way accuracy (normal/bacterial/viral)", None, None, "three_way_accuracy", True, 0.85),
    Target("COVID-19 AUC, COVID test", "covid_test", "covid19", "auc", True, 0.98),
    Target("Adult pneumonia AUC, NIH test", "nih_adult_test", "pneumonia", "auc", True, 0.72),
    Target(
        "COVID-19 flagged on NIH adult test films (all pre-2019)",
        None,
        None,
        "nih_adult_covid19_flag_rate",
        False,
        0.05,
    ),
    Target("False abstention, all test sets", None, None, "false_abstain_rate", False, 0.01),
)

#: Every evaluated (source, finding) entry must also be calibrated to this ECE or better.
MAX_ECE = 0.05


def metrics_path(checkpoint_path: Path) -> Path:
    """Where ``python -m models.evaluate`` writes the report of a checkpoint.

    Args:
        checkpoint_path: ``Settings.checkpoint_path``.

    Returns:
        ``metrics.json`` in the checkpoint's folder (``models/metrics.json`` by default).
    """
    return checkpoint_path.parent / METRICS_FILE


def load_metrics(path: Path) -> dict[str, Any] | None:
    """Read the evaluation report.

    Args:
        path: The ``metrics.json`` file.

    Returns:
        The parsed report, or ``None`` when no evaluation has been run.

    Raises:
        MetricsError: The file exists but is not a JSON object.
    """
    if not path.is_file():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetricsError("The evaluation report could not be read.") from exc
    if not isinstance(report, dict):
        raise MetricsError("The evaluation report has an unexpected layout.")
    return report


def _number(value: Any) -> float | None:
    """A finite float, or ``None`` for anything missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _auc_interval(entry: dict[str, Any]) -> tuple[float | None, float | None]:
    """``(low, high)`` of an entry's AUC interval; ``None`` for each bound that is missing."""
    ci = entry.get("auc_ci")
    if not isinstance(ci, list | tuple) or len(ci) != 2:
        return None, None
    return _number(ci[0]), _number(ci[1])


def _evaluation(report: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    section = report.get("evaluation")
    if not isinstance(section, dict):
        return {}
    return {
        source: {f: e for f, e in findings.items() if isinstance(e, dict)}
        for source, findings in section.items()
        if isinstance(findings, dict)
    }


def source_label(source: str) -> str:
    """Readable name of an evaluation source."""
    return SOURCE_LABELS.get(source, source.replace("_", " "))


def finding_label(finding: str) -> str:
    """Readable name of a finding."""
    return FINDING_LABELS.get(finding, finding.replace("_", " "))


def model_summary(report: dict[str, Any]) -> dict[str, str]:
    """Name, version, short checkpoint hash and training time, as display strings.

    Args:
        report: Parsed metrics report.

    Returns:
        Keys ``name, version, sha256, training_time``; ``"unknown"`` where absent.
    """
    model = _mapping(report.get("model"))
    training = _mapping(report.get("training"))
    seconds = _number(training.get("seconds"))
    return {
        "name": str(model.get("name") or "unknown"),
        "version": str(model.get("version") or "unknown"),
        "sha256": str(model.get("sha256") or "unknown")[:12],
        "training_time": f"{seconds / 60:.1f} min" if seconds is not None else "unknown",
    }


def evaluation_table(report: dict[str, Any]) -> pd.DataFrame:
    """One row per evaluated source and finding.

    Args:
        report: Parsed metrics report.

    Returns:
        Columns ``source, finding, n, auc, auc_low, auc_high, threshold, accuracy,
        sensitivity, specificity, ece``; missing values are NaN.
    """
    rows = []
    for source, findings in _evaluation(report).items():
        for finding, entry in findings.items():
            low, high = _auc_interval(entry)
            rows.append(
                {
                    "source": source,
                    "finding": finding,
                    "n": _number(entry.get("n")),
                    "auc": _number(entry.get("auc")),
                    "auc_low": low,
                    "auc_high": high,
                    "threshold": _number(entry.get("threshold")),
                    "accuracy": _number(entry.get("accuracy")),
                    "sensitivity": _number(entry.get("sensitivity")),
                    "specificity": _number(entry.get("specificity")),
                    "ece": _ece(entry),
                }
            )
    columns = ["source", "finding", "n", "auc", "auc_low", "auc_high", "threshold",
               "accuracy", "sensitivity", "specificity", "ece"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns).astype(dict.fromkeys(columns[2:], "float64"))


def _ece(entry: dict[str, Any]) -> float | None:
    ece = _number(entry.get("ece"))
    reliability = entry.get("reliability")
    if ece is None and isinstance(reliability, dict):
        ece = _number(reliability.get("ece"))
    return ece


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a mapping, else an empty one (the report is read defensively)."""
    return value if isinstance(value, dict) else {}


def _section(report: dict[str, Any], *keys: str) -> Any:
    """``report[k1][k2]...``, or None where any level is missing or not a mapping."""
    value: Any = report
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


#: Where the top-level targets (those without a source) are read in the report.
_TOP_LEVEL_METRICS: dict[str, tuple[str, ...]] = {
    "three_way_accuracy": ("three_way", "accuracy"),
    "nih_adult_covid19_flag_rate": ("covid19_false_flags", "nih_adult_test", "rate"),
    "false_abstain_rate": ("abstention", "false_abstain_rate", "all_test"),
}


def _measured(report: dict[str, Any], target: Target) -> float | None:
    if target.metric in _TOP_LEVEL_METRICS:
        return _number(_section(report, *_TOP_LEVEL_METRICS[target.metric]))
    entry = _evaluation(report).get(target.source or "", {}).get(target.finding or "")
    return _number(entry.get(target.metric)) if entry else None


def targets_table(report: dict[str, Any]) -> pd.DataFrame:
    """Targets against measured values, misses stated plainly.

    Args:
        report: Parsed metrics report.

    Returns:
        Columns ``target, required, measured, status``; ``status`` is ``met``,
        ``MISSED`` or ``not measured``; ``required`` and ``measured`` are
        display strings.
    """
    rows = [(t.name, t.minimum, t.required, _measured(report, t)) for t in TARGETS]
    for _, entry in evaluation_table(report).iterrows():
        ece = None if pd.isna(entry["ece"]) else float(entry["ece"])
        name = (
            f"Calibration ECE, {finding_label(entry['finding'])}, {source_label(entry['source'])}"
        )
        rows.append((name, False, MAX_ECE, ece))
    if not any(name.startswith("Calibration") for name, *_ in rows):
        rows.append(("Calibration ECE", False, MAX_ECE, None))

    records = []
    for name, minimum, required, measured in rows:
        if measured is None:
            status = "not measured"
        else:
            met = measured >= required if minimum else measured <= required
            status = "met" if met else "MISSED"
        records.append(
            {
                "target": name,
                "required": f"{'≥' if minimum else '≤'} {required:.3f}",
                "measured": "—" if measured is None else f"{measured:.3f}",
                "status": status,
            }
        )
    return pd.DataFrame(records, columns=["target", "required", "measured", "status"])


def validity_table(report: dict[str, Any]) -> pd.DataFrame:
    """Whether each finding is valid for children, adults and patients of unknown age.

    Args:
        report: Parsed metrics report (its ``validity`` section, written by
            ``models.evaluate``).

    Returns:
        Columns ``finding, population, valid, auc, auc_low, auc_high, n, positives, reason``
        (``valid`` as ``yes``/``no``; numbers NaN where not measured); empty without a table.
    """
    table = _section(report, "validity", "table")
    rows = []
    for finding, populations in table.items() if isinstance(table, dict) else []:
        for population, entry in populations.items() if isinstance(populations, dict) else []:
            if not isinstance(entry, dict):
                continue
            low, high = _auc_interval(entry)
            rows.append(
                {
                    "finding": finding_label(finding),
                    "population": POPULATION_LABELS.get(population, population),
                    "valid": "yes" if entry.get("valid") is True else "no",
                    "auc": _number(entry.get("auc")),
                    "auc_low": low,
                    "auc_high": high,
                    "n": _number(entry.get("n")),
                    "positives": _number(entry.get("positives")),
                    "reason": str(entry.get("reason") or ""),
                }
            )
    columns = [
        "finding",
        "population",
        "valid",
        "auc",
        "auc_low",
        "auc_high",
        "n",
        "positives",
        "reason",
    ]
    numeric = dict.fromkeys(("auc", "auc_low", "auc_high", "n", "positives"), "float64")
    return pd.DataFrame(rows, columns=columns).astype(numeric)


def _unit_square(fig: go.Figure, diagonal: str, x_title: str, y_title: str, **layout: Any) -> None:
    """Draw the dotted reference diagonal and fix both axes to [0, 1] (ROC, reliability plots)."""
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name=diagonal, line={"dash": "dot", "color": "gray"}
        )
    )
    fig.update_layout(
        xaxis_title=x_title,
        yaxis_title=y_title,
        xaxis={"range": [0, 1]},
        yaxis={"range": [0, 1.02]},
        **layout,
    )


def roc_figure(report: dict[str, Any], source: str) -> go.Figure | None:
    """ROC curves of every finding evaluated on one source, AUC and 95% CI in the legend.

    Args:
        report: Parsed metrics report.
        source: Evaluation source key.

    Returns:
        The figure, or ``None`` when the source has no ROC points.
    """
    fig = go.Figure()
    for finding, entry in _evaluation(report).get(source, {}).items():
        roc = _mapping(entry.get("roc"))
        fpr, tpr = roc.get("fpr"), roc.get("tpr")
        if not fpr or not tpr or len(fpr) != len(tpr):
            continue
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=_roc_name(finding, entry)))
    if not fig.data:
        return None
    _unit_square(
        fig,
        "chance",
        "False-positive rate (1 - specificity)",
        "True-positive rate (sensitivity)",
        legend={"yanchor": "bottom", "y": 0.02, "xanchor": "right", "x": 0.98},
    )
    return fig


def _roc_name(finding: str, entry: dict[str, Any]) -> str:
    auc = _number(entry.get("auc"))
    low, high = _auc_interval(entry)
    text = finding_label(finding)
    if auc is not None:
        text += f": AUC {auc:.3f}"
        if low is not None and high is not None:
            text += f" (95% CI {low:.3f}-{high:.3f})"
    return text


def confusion_figure(matrix: Any, labels: list[str], title: str = "") -> go.Figure | None:
    """Heat map of a confusion matrix, counts written in the cells.

    Args:
        matrix: As read from the report: rows are true classes, columns predicted classes;
            checked here, since the report is read defensively.
        labels: Class names in matrix order.
        title: Figure title.

    Returns:
        The figure, or ``None`` when the matrix does not match the labels.
    """
    if (
        not isinstance(matrix, list)
        or len(matrix) != len(labels)
        or any(not isinstance(row, list) or len(row) != len(labels) for row in matrix)
    ):
        return None
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=[f"predicted {label}" for label in labels],
            y=[f"true {label}" for label in labels],
            text=matrix,
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
        )
    )
    fig.update_layout(title=title, yaxis={"autorange": "reversed"}, height=320)
    return fig


def finding_confusion_figure(report: dict[str, Any], source: str, finding: str) -> go.Figure | None:
    """Confusion matrix of one finding on one source at its chosen threshold.

    Args:
        report: Parsed metrics report.
        source: Evaluation source key.
        finding: Finding key.

    Returns:
        The figure, or ``None`` when that entry has no confusion matrix.
    """
    entry = _evaluation(report).get(source, {}).get(finding)
    if not entry:
        return None
    threshold = _number(entry.get("threshold"))
    title = finding_label(finding) + (
        f" at threshold {threshold:.2f}" if threshold is not None else ""
    )
    return confusion_figure(entry.get("confusion"), ["absent", "present"], title)


def three_way_figure(report: dict[str, Any]) -> go.Figure | None:
    """Confusion matrix of the normal / bacterial / viral decision, if evaluated."""
    three_way = report.get("three_way")
    if not isinstance(three_way, dict):
        return None
    labels = three_way.get("labels")
    if not isinstance(labels, list):
        return None
    accuracy = _number(three_way.get("accuracy"))
    title = "3-way" + (f": accuracy {accuracy:.1%}" if accuracy is not None else "")
    return confusion_figure(three_way.get("confusion"), [str(label) for label in labels], title)


def reliability_figure(report: dict[str, Any], source: str) -> go.Figure | None:
    """Reliability diagram (observed rate against mean predicted probability) per finding.

    Args:
        report: Parsed metrics report.
        source: Evaluation source key.

    Returns:
        The figure, or ``None`` when no entry of that source has reliability bins.
    """
    fig = go.Figure()
    for finding, entry in _evaluation(report).get(source, {}).items():
        bins = _mapping(entry.get("reliability"))
        confidence, accuracy = bins.get("bin_confidence"), bins.get("bin_accuracy")
        if not confidence or not accuracy or len(confidence) != len(accuracy):
            continue
        ece = _ece(entry)
        name = finding_label(finding) + (f" (ECE {ece:.3f})" if ece is not None else "")
        fig.add_trace(
            go.Scatter(
                x=confidence,
                y=accuracy,
                mode="lines+markers",
                name=name,
                customdata=bins.get("bin_count"),
                hovertemplate="predicted %{x:.2f}, observed %{y:.2f}, %{customdata} images",
            )
        )
    if not fig.data:
        return None
    _unit_square(fig, "perfect", "Mean predicted probability", "Observed share with the finding")
    return fig


def training_figure(report: dict[str, Any]) -> go.Figure | None:
    """Training and validation loss, and validation AUC per finding, by epoch.

    Args:
        report: Parsed metrics report.

    Returns:
        A two-panel figure, or ``None`` when there is no training history.
    """
    training = _mapping(report.get("training"))
    history = [row for row in training.get("history") or [] if isinstance(row, dict)]
    history = [row for row in history if _number(row.get("epoch")) is not None]
    if not history:
        return None
    epochs = [row["epoch"] for row in history]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Validation AUC"))
    for key, name in (("train_loss", "training loss"), ("val_loss", "validation loss")):
        values = [_number(row.get(key)) for row in history]
        if any(value is not None for value in values):
            fig.add_trace(go.Scatter(x=epochs, y=values, mode="lines+markers", name=name), 1, 1)
    for key, suffix in (("val_auc", ""), ("val_auc_adult", " (NIH adults)")):
        findings = sorted(
            {f for row in history if isinstance(row.get(key), dict) for f in row[key]}
        )
        for finding in findings:
            values = [
                _number(row[key].get(finding)) if isinstance(row.get(key), dict) else None
                for row in history
            ]
            if all(value is None for value in values):
                continue  # e.g. covid19 among the NIH films: one class, no AUC
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=values,
                    mode="lines+markers",
                    name=f"AUC {finding_label(finding)}{suffix}",
                ),
                1,
                2,
            )
    fig.update_xaxes(title_text="Epoch")
    return fig


def abstention_table(report: dict[str, Any]) -> pd.DataFrame:
    """How often the model declines to answer on real test scans, and on inputs it must refuse.

    Args:
        report: Parsed metrics report.

    Returns:
        Columns ``case, abstained`` (display strings): the false-abstention rate per
        test set, then each probe (e.g. a colour photograph) with ``yes``/``NO``.
    """
    section = _mapping(report.get("abstention"))
    rows = []
    rates = section.get("false_abstain_rate")
    for source, rate in rates.items() if isinstance(rates, dict) else []:
        value = _number(rate)
        if value is not None:
            rows.append(
                {"case": f"Real radiographs: {source_label(source)}", "abstained": f"{value:.1%}"}
            )
    probes = section.get("probes")
    for name, probe in probes.items() if isinstance(probes, dict) else []:
        if isinstance(probe, dict):
            refused = "yes" if probe.get("abstained") else "NO"
            rows.append(
                {"case": f"Not a chest radiograph: {name.replace('_', ' ')}", "abstained": refused}
            )
    return pd.DataFrame(rows, columns=["case", "abstained"])
