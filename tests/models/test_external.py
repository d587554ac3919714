"""The external serial adults are scored like the app scores them: frontal films only, adults.

Behaviour only: the external sets are for evaluation, so no test asserts a score on them.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from core.findings import FINDINGS
from models.architecture import ChestXrayNet
from models.calibration import PopulationCalibration
from models.checkpoint import save_checkpoint
from models.evaluate import EXTERNAL_DIR, LATERAL_VIEWS, serial_adults_report
from models.inference import load_classifier
from models.ood import FeatureGaussian
from models.populations import ADULT, POPULATIONS


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    torch.manual_seed(0)
    model = ChestXrayNet()
    folder = tmp_path_factory.mktemp("tiny")
    path = folder / "tiny.pt"
    size = model.embedding_size
    save_checkpoint(
        path,
        model=model,
        version="test",
        input_size=48,
        calibration={
            population: PopulationCalibration(
                dict.fromkeys(FINDINGS, 1.0),
                dict.fromkeys(FINDINGS, 0.5),
                dict.fromkeys(FINDINGS, population),
            )
            for population in POPULATIONS
        },
        ood=FeatureGaussian(mean=np.zeros(size), precision=np.eye(size), threshold=1e12),
        extra={},
    )
    return load_classifier(path, metrics_path=folder / "metrics.json")


def test_serial_adults_are_scored_as_adults_on_frontal_films_only(shared_data, tiny):
    folder = shared_data / EXTERNAL_DIR / "serial_adults"
    with open(folder / "series.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    laterals = sum(row["view"] in LATERAL_VIEWS for row in rows)
    assert laterals > 0, "the set holds real lateral films"

    report = serial_adults_report(tiny, folder)

    assert report["patients_count"] == len({row["patient"] for row in rows})
    assert report["frontal_films"] == len(rows) - laterals == len(report["films"])
    assert report["lateral_films_excluded"] == laterals
    assert all(film["view"] not in LATERAL_VIEWS for film in report["films"])
    assert {film["population"] for film in report["films"]} == {ADULT}
    assert sum(p["frontal_films"] for p in report["patients"].values()) == len(report["films"])
    assert sum(d["patients"] for d in report["diagnoses"].values()) == report["patients_count"]
    for patient in report["patients"].values():
        for finding in FINDINGS:
            summary = patient["findings"][finding]
            assert summary["min"] <= summary["max"]
            assert 0 <= summary["flagged"] <= patient["frontal_films"]
