"""Per-population calibration, validity and noise bands of the classifier, on a tiny checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import UserError
from core.findings import FINDINGS
from core.imaging import DecodedScan, ScanMetadata
from models.architecture import ChestXrayNet
from models.calibration import PopulationCalibration
from models.checkpoint import load_checkpoint, save_checkpoint
from models.inference import ModelUnavailable, load_classifier
from models.noise import PERTURBATIONS, SOURCES, measure
from models.ood import FeatureGaussian
from models.populations import ADULT, CHILD, UNKNOWN
from models.validity import FindingValidity, to_table

#: Temperatures of the tiny checkpoint: adults' are 4x the children's, so a test can tell
#: from the probabilities which calibration was applied.
TEMPERATURES = {CHILD: 0.5, ADULT: 2.0, UNKNOWN: 1.0}
THRESHOLDS = {CHILD: 0.2, ADULT: 0.8, UNKNOWN: 0.5}


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained network whose calibration differs per population; nothing is refused."""
    torch.manual_seed(0)
    model = ChestXrayNet()
    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    calibration = {
        population: PopulationCalibration(
            temperatures=dict.fromkeys(FINDINGS, TEMPERATURES[population]),
            thresholds=dict.fromkeys(FINDINGS, THRESHOLDS[population]),
            fitted_on=dict.fromkeys(FINDINGS, population),
        )
        for population in TEMPERATURES
    }
    size = model.embedding_size
    save_checkpoint(
        path,
        model=model,
        version="test",
        input_size=64,
        calibration=calibration,
        ood=FeatureGaussian(mean=np.zeros(size), precision=np.eye(size), threshold=1e12),
        extra={},
    )
    return path


def _scan(seed: int) -> DecodedScan:
    pixels = np.random.default_rng(seed).random((80, 80)).astype(np.float32)
    return DecodedScan(
        pixels=pixels, metadata=ScanMetadata(source_format="png", width=80, height=80)
    )


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint, tmp_path_factory):
    return load_classifier(
        tiny_checkpoint, metrics_path=tmp_path_factory.mktemp("none") / "metrics.json"
    )


def test_ages_pick_the_population_calibration_and_say_which(tiny):
    scans = [_scan(0)] * 3
    child, adult, unknown = tiny.predict(scans, ages=[4, 40, None])
    assert (child.population, adult.population, unknown.population) == (CHILD, ADULT, UNKNOWN)
    for prediction, population in ((child, CHILD), (adult, ADULT), (unknown, UNKNOWN)):
        assert prediction.thresholds == dict.fromkeys(FINDINGS, THRESHOLDS[population])
    for finding in FINDINGS:
        # Same film, same logit: only the temperature differs.
        logit = unknown.log_odds[finding] * TEMPERATURES[UNKNOWN]
        assert child.log_odds[finding] == pytest.approx(logit / TEMPERATURES[CHILD])
        assert adult.log_odds[finding] == pytest.approx(logit / TEMPERATURES[ADULT])
        assert adult.probabilities[finding] == pytest.approx(
            1 / (1 + np.exp(-adult.log_odds[finding]))
        )


def test_predict_without_ages_is_the_unknown_population(tiny):
    (plain,) = tiny.predict([_scan(1)])
    (explicit,) = tiny.predict([_scan(1)], populations=[UNKNOWN])
    assert plain.population == UNKNOWN
    assert plain.probabilities == explicit.probabilities
    assert tiny.info.thresholds == dict.fromkeys(FINDINGS, THRESHOLDS[UNKNOWN])
    assert tiny.thresholds_for(70) == dict.fromkeys(FINDINGS, THRESHOLDS[ADULT])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ages": [30]},
        {"populations": [ADULT, "martian"]},
        {"ages": [1, 2], "populations": [CHILD, CHILD]},
    ],
)
def test_bad_ages_or_populations_are_refused(tiny, kwargs):
    with pytest.raises(ValueError):
        tiny.predict([_scan(2), _scan(3)], **kwargs)


def test_without_an_evaluation_no_finding_is_valid(tiny):
    verdict = tiny.validity("pneumonia", 40)
    assert not verdict.valid
    assert "not been evaluated" in verdict.reason
    assert tiny.noise_band("pneumonia") is None
    with pytest.raises(ValueError):
        tiny.validity("fracture", None)


def test_validity_and_noise_are_read_for_this_checkpoint_only(tiny_checkpoint, tmp_path):
    sha256 = load_checkpoint(tiny_checkpoint).sha256
    table = to_table(
        [
            FindingValidity("pneumonia", CHILD, True, "ok", 0.9, (0.85, 0.95)),
            FindingValidity("pneumonia", ADULT, False, "misses", 0.65, (0.55, 0.75)),
        ]
    )
    metrics, noise = tmp_path / "metrics.json", tmp_path / "noise.json"
    metrics.write_text(json.dumps({"model": {"sha256": sha256}, "validity": {"table": table}}))
    noise.write_text(
        json.dumps({"model": {"sha256": sha256}, "noise": {"pneumonia": {"band": 0.4}}})
    )
    classifier = load_classifier(tiny_checkpoint, metrics_path=metrics, noise_path=noise)
    assert classifier.validity("pneumonia", 3).valid
    assert not classifier.validity("pneumonia", 30).valid
    assert classifier.validity("pneumonia", 30).auc_ci == (0.55, 0.75)
    assert classifier.noise_band("pneumonia") == 0.4

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"model": {"sha256": "0" * 64}, "validity": {"table": table}}))
    stranger = load_classifier(tiny_checkpoint, metrics_path=other, noise_path=other)
    assert not stranger.validity("pneumonia", 3).valid
    assert stranger.noise_band("pneumonia") is None


def test_model_unavailable_is_a_user_error_and_still_a_runtime_error(tmp_path: Path):
    with pytest.raises(ModelUnavailable) as caught:
        load_classifier(tmp_path / "missing.pt")
    assert isinstance(caught.value, UserError) and isinstance(caught.value, RuntimeError)
    assert str(caught.value).startswith("The analysis model is not available")


def test_noise_measurement_reports_saturation_and_bands(tiny):
    scans = [_scan(seed) for seed in range(4)]
    sources = ["nih_adult", "nih_adult", "covid_radiography", "covid_radiography"]
    result = measure(tiny, scans, [ADULT] * 4, sources)
    assert set(result["saturation"]) == set(SOURCES)
    assert set(result["noise_by_perturbation"]) == set(PERTURBATIONS)
    for finding in FINDINGS:
        summary = result["noise"][finding]
        assert 0 <= summary["median"] <= summary["band"] <= summary["max"]
        assert summary["max"] > 0, "re-encoding, cropping and re-exposing move the output"
        assert 0 <= result["saturation"]["nih_adult"][finding] <= 1
