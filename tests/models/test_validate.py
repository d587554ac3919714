"""Validation-only scoring of a checkpoint (the adoption rule's numbers)."""

import json
import subprocess
import sys
from pathlib import Path

from core.findings import FINDINGS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_shipped_checkpoint_separates_validation_pneumonia_clean_and_perturbed(shared_data):
    run = subprocess.run(
        [sys.executable, "-m", "models.validate", "--limit", "300"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    (line,) = [json.loads(text) for text in run.stdout.splitlines()]
    assert set(line["auc"]) == {"clean", "perturbed 1.0", "perturbed 1.5"}
    assert set(line["auc"]["clean"]) == set(FINDINGS)
    for view in line["auc"].values():
        assert view["pneumonia"] > 0.95
