"""``python -m models.train --recalibrate`` on a tiny checkpoint and a few validation films."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from core.findings import FINDINGS
from models.architecture import ChestXrayNet
from models.calibration import MAX_NO_FINDING_FLAG_RATE, PopulationCalibration
from models.checkpoint import load_checkpoint, save_checkpoint
from models.ood import FeatureGaussian
from models.populations import POPULATIONS
from models.train import MODEL_VERSION, main

#: Temperatures of the tiny checkpoint, which re-calibration must keep.
TEMPERATURES = {"child": 0.8, "adult": 1.6, "unknown": 1.2}


def _tiny_checkpoint(path: Path) -> None:
    torch.manual_seed(0)
    model = ChestXrayNet()
    size = model.embedding_size
    save_checkpoint(
        path,
        model=model,
        version="1.2.0",
        input_size=48,
        calibration={
            population: PopulationCalibration(
                temperatures=dict.fromkeys(FINDINGS, TEMPERATURES[population]),
                thresholds=dict.fromkeys(FINDINGS, 0.001),  # flags nearly everything
                fitted_on=dict.fromkeys(FINDINGS, population),
            )
            for population in POPULATIONS
        },
        ood=FeatureGaussian(mean=np.zeros(size), precision=np.eye(size), threshold=1e12),
        extra={"seed": 1},
    )


def test_recalibration_keeps_weights_and_temperatures_and_caps_every_threshold(
    shared_data, tmp_path, capsys
):
    path = tmp_path / "checkpoint.pt"
    _tiny_checkpoint(path)
    before = load_checkpoint(path)
    (tmp_path / "training_metrics.json").write_text(json.dumps({"version": "1.2.0"}))

    assert main(["--recalibrate", "--out", str(path), "--limit", "150", "--threads", "1"]) == 0

    after = load_checkpoint(path)
    assert after.version == MODEL_VERSION != before.version
    for name, tensor in before.model.state_dict().items():
        assert torch.equal(tensor, after.model.state_dict()[name]), name
    assert after.ood.threshold == before.ood.threshold
    recalibrated = after.extra["recalibrated"]
    assert recalibrated["from"] == {"version": "1.2.0", "sha256": before.sha256}
    assert recalibrated["weights_unchanged"] and after.extra["seed"] == 1
    metrics = json.loads((tmp_path / "training_metrics.json").read_text())
    report = metrics["recalibration"]["after"]
    for population in POPULATIONS:
        assert (
            after.calibration[population].temperatures
            == before.calibration[population].temperatures
        )
        for finding in FINDINGS:
            assert after.calibration[population].thresholds[finding] > 0.001
            rate = report[population]["findings"][finding]["no_finding_flag_rate_with_copies"]
            assert rate <= MAX_NO_FINDING_FLAG_RATE, (population, finding)
    assert metrics["calibration"]["adult"]["thresholds"] == after.calibration["adult"].thresholds
    assert "1.2.0 -> " + MODEL_VERSION in capsys.readouterr().out
