"""Validation-only scoring of a checkpoint and the adoption rule written before any test readout."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.findings import FINDINGS
from models.validate import MAX_EARLIER_AUC_LOSS, adoption

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_shipped_checkpoint_separates_validation_pneumonia_clean_and_perturbed(shared_data):
    run = subprocess.run(
        [sys.executable, "-m", "models.validate", "--limit", "150"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    (line,) = [json.loads(text) for text in run.stdout.splitlines()]
    assert set(line["auc"]) == {"clean", "perturbed 1.0", "perturbed 1.5"}
    assert set(line["auc"]["clean"]) == set(FINDINGS)
    for view in line["auc_earlier"].values():
        assert view["pneumonia"] > 0.95
    assert line["adult_films"] > 0
    assert 0 <= line["adult_covid19_flag_rate"] <= 1


def _report(earlier: float, adult_auc: float, flag_rate: float) -> dict:
    views = ("clean", "perturbed 1.0", "perturbed 1.5")
    return {
        "mean_auc_earlier": dict.fromkeys(views, earlier),
        "auc_adult": {view: {"pneumonia": adult_auc} for view in views},
        "adult_covid19_flag_rate": flag_rate,
    }


def test_candidate_better_on_adults_and_as_good_elsewhere_is_adopted():
    verdict = adoption(
        _report(0.970, 0.60, 0.20), _report(0.970 - MAX_EARLIER_AUC_LOSS / 2, 0.75, 0.04)
    )
    assert verdict["adopt"]
    assert all(check["passed"] for check in verdict["checks"].values())


@pytest.mark.parametrize(
    ("candidate", "failed"),
    [
        (_report(0.970 - 2 * MAX_EARLIER_AUC_LOSS, 0.75, 0.04), "earlier mean AUC, clean"),
        (_report(0.970, 0.69, 0.04), "adult pneumonia AUC, clean"),
        (_report(0.970, 0.75, 0.06), "adult covid19 flag rate"),
    ],
)
def test_candidate_failing_one_check_is_not_adopted(candidate, failed):
    verdict = adoption(_report(0.970, 0.60, 0.20), candidate)
    assert not verdict["adopt"]
    assert not verdict["checks"][failed]["passed"]
