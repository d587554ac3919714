"""The shipped checkpoint: loads, reproduces recorded probabilities, abstains on non-chests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file

from core.findings import FINDINGS
from core.imaging import decode_scan
from models.dataset import load_image_tensor
from models.inference import ModelUnavailable, load_classifier, select_device

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
CHECKPOINT = MODELS_DIR / "checkpoint.pt"


@pytest.fixture(scope="module")
def classifier():
    return load_classifier(CHECKPOINT)


def test_checkpoint_is_small_and_identified(classifier):
    assert CHECKPOINT.stat().st_size <= 30 * 1024 * 1024
    assert len(classifier.info.sha256) == 64
    assert set(classifier.info.thresholds) == set(FINDINGS)
    assert all(0 < t < 1 for t in classifier.info.thresholds.values())


def test_reproduces_recorded_probabilities(classifier, shared_data):
    reference = json.loads((MODELS_DIR / "reference_predictions.json").read_text())
    assert len(reference) == 4
    assert {entry["population"] for entry in reference.values()} == {"child", "adult"}
    scans = [decode_scan((shared_data / name).read_bytes()) for name in reference]
    populations = [entry["population"] for entry in reference.values()]
    with_population = classifier.predict(scans, populations=populations)
    without_age = classifier.predict(scans)
    for name, known, unknown in zip(reference, with_population, without_age, strict=True):
        assert known.population == reference[name]["population"]
        for finding in FINDINGS:
            assert known.probabilities[finding] == pytest.approx(
                reference[name]["probabilities"][finding], abs=1e-4
            ), name
            assert unknown.probabilities[finding] == pytest.approx(
                reference[name]["unknown_age"][finding], abs=1e-4
            ), name


def test_training_and_inference_preprocess_identically(classifier, shared_data):
    path = shared_data / "kermany/test/PNEUMONIA/person100_bacteria_475.jpeg"
    training = load_image_tensor(path, classifier.input_size)
    inference = classifier._inputs([decode_scan(path.read_bytes())])[0].cpu()
    assert torch.equal(training, inference)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_abstains_on_pydicom_ct_and_mr(classifier, name):
    (prediction,) = classifier.predict([decode_scan(Path(get_testdata_file(name)).read_bytes())])
    assert prediction.abstained
    kind = {"CT_small.dcm": "a CT", "MR_small.dcm": "an MR"}[name]
    assert prediction.abstain_reason == (
        f"This is not a chest X-ray: it is {kind} scan. The model cannot read it."
    )
    assert set(prediction.probabilities) == set(FINDINGS), "probabilities kept for the record"


def test_abstains_on_blank_and_keeps_real_radiograph(classifier, samples_dir):
    blank = decode_scan(_png(np.full((128, 128), 90, np.uint8)))
    real = decode_scan((samples_dir / "00000001_000.png").read_bytes())
    blank_prediction, real_prediction = classifier.predict([blank, real])
    assert blank_prediction.abstained
    assert not real_prediction.abstained


def test_abstains_on_a_negative_but_reads_the_same_film_the_right_way_round(
    classifier, samples_dir
):
    # Fake_MONOHR1.dcm holds the CR sample's pixels under a MONOCHROME1 header: a negative.
    negative = decode_scan((samples_dir / "Fake_MONOHR1.dcm").read_bytes())
    original = decode_scan(
        (samples_dir / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm").read_bytes()
    )
    negative_prediction, original_prediction = classifier.predict([negative, original])
    assert negative_prediction.abstained
    assert "negative" in negative_prediction.abstain_reason
    assert not original_prediction.abstained


def test_heatmap_matches_image_and_is_normalised(classifier, samples_dir):
    scan = decode_scan((samples_dir / "00000001_000.png").read_bytes())
    heat = classifier.heatmap(scan, "pneumonia")
    assert heat.shape == scan.pixels.shape
    assert heat.min() >= 0 and heat.max() <= 1
    with pytest.raises(ValueError):
        classifier.heatmap(scan, "fracture")


def test_batches_give_the_same_answers_as_single_images(classifier, samples_dir):
    scans = [decode_scan(p.read_bytes()) for p in sorted(samples_dir.iterdir())]
    together = classifier.predict(scans, batch_size=4)
    alone = [classifier.predict([scan])[0] for scan in scans]
    for a, b in zip(together, alone, strict=True):
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)


def test_missing_and_corrupt_checkpoints_give_one_sentence(tmp_path):
    with pytest.raises(ModelUnavailable, match="missing"):
        load_classifier(tmp_path / "absent.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(CHECKPOINT.read_bytes()[:1000])
    with pytest.raises(ModelUnavailable, match="damaged"):
        load_classifier(corrupt)


def test_cpu_is_chosen_without_an_accelerator():
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else "mps"
        if torch.backends.mps.is_available()
        else "cpu"
    )
    assert select_device().type == expected


def _png(array: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_threads_are_set_for_the_process_only_when_asked():
    before = torch.get_num_threads()
    try:
        load_classifier(CHECKPOINT)
        assert torch.get_num_threads() == before
        load_classifier(CHECKPOINT, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
