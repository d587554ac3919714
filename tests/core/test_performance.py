"""Tests for core.performance: reading the evaluation report and building its views."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from core import performance


def _entry(auc: float, accuracy: float, ece: float) -> dict:
    return {
        "n": 624,
        "auc": auc,
        "auc_ci": [auc - 0.01, min(auc + 0.01, 1.0)],
        "threshold": 0.42,
        "accuracy": accuracy,
        "sensitivity": 0.95,
        "specificity": 0.9,
        "confusion": [[210, 24], [19, 371]],
        "ece": ece,
        "roc": {"fpr": [0.0, 0.1, 1.0], "tpr": [0.0, 0.9, 1.0]},
        "reliability": {
            "bin_confidence": [0.1, 0.9],
            "bin_accuracy": [0.12, 0.85],
            "bin_count": [300, 324],
        },
    }


@pytest.fixture()
def report() -> dict:
    return {
        "model": {"name": "chestxraynet", "version": "1.0.0", "sha256": "ab" * 32},
        "thresholds": {"pneumonia": 0.42},
        "training": {
            "history": [
                {"epoch": 1, "train_loss": 0.6, "val_loss": 0.5, "val_auc": {"pneumonia": 0.9}},
                {"epoch": 2, "train_loss": 0.4, "val_loss": 0.45, "val_auc": {"pneumonia": 0.95}},
            ],
            "seconds": 600.0,
        },
        "evaluation": {
            "kermany_test": {
                "pneumonia": _entry(auc=0.980, accuracy=0.91, ece=0.03),
                "viral_pneumonia": _entry(auc=0.85, accuracy=0.80, ece=0.08),
            },
            "covid_test": {"covid19": _entry(auc=0.995, accuracy=0.97, ece=0.02)},
        },
        "three_way": {
            "accuracy": 0.86,
            "confusion": [[200, 20, 14], [5, 220, 17], [10, 40, 98]],
            "labels": ["normal", "bacterial", "viral"],
        },
    }


def _status(table, prefix: str) -> str:
    return table[table["target"].str.startswith(prefix)]["status"].item()


def test_missing_file_means_no_evaluation(tmp_path: Path) -> None:
    assert performance.load_metrics(tmp_path / "metrics.json") is None


def test_corrupt_file_raises_metrics_error(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("{not json")
    with pytest.raises(performance.MetricsError):
        performance.load_metrics(path)
    path.write_text("[1, 2]")
    with pytest.raises(performance.MetricsError):
        performance.load_metrics(path)


def test_load_round_trip(tmp_path: Path, report: dict) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(report))
    assert performance.load_metrics(path) == report


def test_targets_show_met_and_missed(report: dict) -> None:
    table = performance.targets_table(report)
    assert _status(table, "Pneumonia AUC") == "met"
    assert _status(table, "Pneumonia accuracy") == "MISSED"  # 0.91 < 0.93
    assert _status(table, "3-way") == "met"
    assert _status(table, "COVID-19 AUC") == "met"
    assert _status(table, "Calibration ECE, Viral") == "MISSED"  # 0.08 > 0.05
    assert _status(table, "Calibration ECE, Pneumonia") == "met"
    measured = table.set_index("target").loc["Pneumonia accuracy, Kermany test", "measured"]
    assert measured == "0.910"


def test_targets_without_measurements_are_not_invented() -> None:
    table = performance.targets_table({})
    assert set(table["status"]) == {"not measured"}
    assert set(table["measured"]) == {"—"}


def test_evaluation_table_tolerates_missing_fields(report: dict) -> None:
    del report["evaluation"]["covid_test"]["covid19"]["auc_ci"]
    report["evaluation"]["covid_test"]["covid19"]["sensitivity"] = float("nan")
    table = performance.evaluation_table(report).set_index(["source", "finding"])
    row = table.loc[("covid_test", "covid19")]
    assert row["auc"] == pytest.approx(0.995)
    assert math.isnan(row["auc_low"]) and math.isnan(row["sensitivity"])
    assert len(table) == 3


def test_roc_figure_has_one_curve_per_finding_plus_chance(report: dict) -> None:
    fig = performance.roc_figure(report, "kermany_test")
    names = [trace.name for trace in fig.data]
    assert len(names) == 3
    assert names[0] == "Pneumonia: AUC 0.980 (95% CI 0.970-0.990)"
    assert performance.roc_figure(report, "absent_source") is None


def test_confusion_figures(report: dict) -> None:
    fig = performance.finding_confusion_figure(report, "kermany_test", "pneumonia")
    assert [list(row) for row in fig.data[0].z] == [[210, 24], [19, 371]]
    assert "0.42" in fig.layout.title.text
    assert performance.three_way_figure(report) is not None
    assert performance.confusion_figure([[1, 2]], ["a", "b"]) is None


def test_reliability_and_training_figures(report: dict) -> None:
    reliability = performance.reliability_figure(report, "covid_test")
    assert [trace.name for trace in reliability.data] == [
        "COVID-19-like pattern (ECE 0.020)",
        "perfect",
    ]
    training = performance.training_figure(report)
    assert {trace.name for trace in training.data} == {
        "training loss",
        "validation loss",
        "AUC Pneumonia",
    }
    assert performance.training_figure({"training": {"history": []}}) is None


def test_model_summary(report: dict) -> None:
    summary = performance.model_summary(report)
    assert summary == {
        "name": "chestxraynet",
        "version": "1.0.0",
        "sha256": "abababababab",
        "training_time": "10.0 min",
    }
    assert performance.model_summary({})["version"] == "unknown"


def test_metrics_path_sits_beside_the_checkpoint(tmp_path: Path) -> None:
    assert performance.metrics_path(tmp_path / "checkpoint.pt") == tmp_path / "metrics.json"


def test_abstention_table(report: dict) -> None:
    report["abstention"] = {
        "false_abstain_rate": {"kermany_test": 0.01, "covid_test": 0.0},
        "probes": {"colour_photograph": {"abstained": True}, "MR_small.dcm": {"abstained": False}},
    }
    table = performance.abstention_table(report).set_index("case")["abstained"]
    assert table["Real radiographs: Kermany test (children)"] == "1.0%"
    assert table["Not a chest radiograph: colour photograph"] == "yes"
    assert table["Not a chest radiograph: MR small.dcm"] == "NO"
    assert performance.abstention_table({}).empty


def test_adult_targets_read_the_nih_section_and_false_flags(report: dict) -> None:
    report["evaluation"]["nih_adult_test"] = {"pneumonia": _entry(auc=0.70, accuracy=0.6, ece=0.1)}
    report["covid19_false_flags"] = {"nih_adult_test": {"rate": 0.04}}
    report["abstention"] = {"false_abstain_rate": {"all_test": 0.02}}
    table = performance.targets_table(report)
    assert _status(table, "Adult pneumonia AUC") == "MISSED"  # 0.70 < 0.72
    assert _status(table, "COVID-19 flagged on NIH") == "met"  # 0.04 <= 0.05
    assert _status(table, "False abstention") == "MISSED"  # 0.02 > 0.01
    assert performance.source_label("nih_adult_test") == "NIH test (adults and adolescents)"


def test_validity_table_lists_each_finding_and_population(report: dict) -> None:
    report["validity"] = {
        "table": {
            "pneumonia": {
                "child": {
                    "valid": True,
                    "auc": 0.98,
                    "auc_ci": [0.97, 0.99],
                    "n": 624,
                    "positives": 390,
                    "reason": "ok",
                },
                "adult": {
                    "valid": False,
                    "auc": 0.66,
                    "auc_ci": [0.55, 0.76],
                    "n": 112,
                    "positives": 54,
                    "reason": "misses",
                },
                "unknown": {
                    "valid": False,
                    "auc": None,
                    "auc_ci": None,
                    "reason": "not valid for adults",
                },
            }
        }
    }
    table = performance.validity_table(report).set_index("population")
    assert list(table.index) == ["Children", "Adults", "Age unknown"]
    assert table.loc["Children", "valid"] == "yes" and table.loc["Adults", "valid"] == "no"
    assert table.loc["Adults", "auc_low"] == pytest.approx(0.55)
    assert math.isnan(table.loc["Age unknown", "auc"])
    assert performance.validity_table({}).empty


def test_training_figure_adds_the_adult_auc_where_recorded(report: dict) -> None:
    for row in report["training"]["history"]:
        row["val_auc_adult"] = {"pneumonia": 0.7, "covid19": float("nan")}
    names = {trace.name for trace in performance.training_figure(report).data}
    assert "AUC Pneumonia (NIH adults)" in names
    assert "AUC COVID-19-like pattern (NIH adults)" not in names
