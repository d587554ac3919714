"""Evaluate the shipped checkpoint once on the official test splits: ``python -m models.evaluate``.

Writes ``models/metrics.json`` (per source and finding: AUC with bootstrap CI,
accuracy/sensitivity/specificity and confusion matrix at the validation-chosen
threshold, ECE, ROC points, reliability bins; three-way Kermany accuracy; abstention
rates; training history) and ``models/reference_predictions.json`` (probabilities of
three named test images that the regression test reproduces) and the analyst pages' figures
as plotly JSON under ``models/plots/``.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.data import get_testdata_file

from core.findings import FINDINGS
from core.imaging import decode_scan
from core.settings import load_settings
from models.data import Example, load_manifest, split_examples
from models.inference import Classifier, load_classifier
from models.metrics import bootstrap_auc_ci, reliability, roc_auc, roc_points, threshold_metrics

MODELS_DIR = Path(__file__).resolve().parent
#: Test images whose probabilities the regression test pins (one per Kermany class + COVID).
REFERENCE_IMAGES = (
    "kermany/test/NORMAL/IM-0001-0001.jpeg",
    "kermany/test/PNEUMONIA/person100_bacteria_475.jpeg",
    "covid_radiography/test/COVID/COVID-1001.jpeg",
)
TARGETS = {
    "kermany_pneumonia_auc": 0.975,
    "kermany_pneumonia_accuracy": 0.93,
    "kermany_three_way_accuracy": 0.85,
    "covid19_auc": 0.98,
    "ece_max": 0.05,
}


def finding_report(labels: np.ndarray, probabilities: np.ndarray, threshold: float, seed: int) -> dict:
    """Every metric of one finding on one set of examples.

    Args:
        labels: 0/1 labels.
        probabilities: Calibrated probabilities.
        threshold: The validation-chosen threshold.
        seed: Bootstrap seed.

    Returns:
        ``n``, ``positives``, ``auc``, ``auc_ci``, threshold metrics, ``ece``, ``roc``,
        ``reliability``.
    """
    calibration = reliability(labels, probabilities)
    return {
        "n": int(len(labels)),
        "positives": int(np.sum(labels)),
        "auc": roc_auc(labels, probabilities),
        "auc_ci": list(bootstrap_auc_ci(labels, probabilities, seed=seed)),
        **threshold_metrics(labels, probabilities, threshold),
        "ece": calibration.pop("ece"),
        "roc": roc_points(labels, probabilities),
        "reliability": calibration,
    }


def three_way(subtypes: list[str], probabilities: np.ndarray, thresholds: dict[str, float]) -> dict:
    """Normal / bacterial / viral accuracy: normal below the pneumonia threshold, else the
    larger of the bacterial and viral probabilities."""
    labels = ["normal", "bacterial", "viral"]
    pneumonia = probabilities[:, FINDINGS.index("pneumonia")] >= thresholds["pneumonia"]
    bacterial = probabilities[:, FINDINGS.index("bacterial_pneumonia")]
    viral = probabilities[:, FINDINGS.index("viral_pneumonia")]
    predicted = np.where(~pneumonia, "normal", np.where(bacterial >= viral, "bacterial", "viral"))
    matrix = [[int(np.sum((np.array(subtypes) == t) & (predicted == p))) for p in labels] for t in labels]
    return {
        "labels": labels,
        "confusion": matrix,
        "accuracy": float(np.mean(np.array(subtypes) == predicted)),
        "n": len(subtypes),
    }


def _decode_all(examples: list[Example]):
    return [decode_scan(example.path.read_bytes(), str(example.path)) for example in examples]


def _probe_scans(shared_dir: Path) -> dict:
    # Inputs that are not frontal chest radiographs the model can read; the guard must refuse each.
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    photo[..., 0] = np.linspace(0, 255, 256, dtype=np.uint8)
    probes = {}
    for name, image in {"colour_photograph": photo, "blank": np.full((256, 256), 128, np.uint8)}.items():
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        probes[name] = decode_scan(buffer.getvalue())
    for name in ("CT_small.dcm", "MR_small.dcm"):
        probes[name] = decode_scan(Path(get_testdata_file(name)).read_bytes())
    # A negative: MONOCHROME2 pixels whose header says MONOCHROME1, so decoding inverts them.
    negative = shared_dir / "samples" / "Fake_MONOHR1.dcm"
    probes["inverted_radiograph"] = decode_scan(negative.read_bytes(), negative.name)
    return probes


def evaluate(classifier: Classifier, shared_dir: Path, seed: int = 0) -> tuple[dict, dict]:
    """Compute the full report on the official test splits.

    Args:
        classifier: The loaded classifier.
        shared_dir: ``Settings.shared_data_dir``.
        seed: Bootstrap seed.

    Returns:
        ``(metrics, reference_predictions)``.
    """
    thresholds = classifier.info.thresholds
    test = split_examples(load_manifest(shared_dir))["test"]
    predictions = classifier.predict(_decode_all(test))
    probabilities = np.array([[p.probabilities[f] for f in FINDINGS] for p in predictions])
    abstained = np.array([p.abstained for p in predictions])
    targets = np.stack([e.target for e in test])
    mask = np.stack([e.mask for e in test])
    sources = np.array([e.source for e in test])

    evaluation: dict[str, dict] = {}
    for source, rows in {
        "kermany_test": sources == "kermany",
        "covid_test": sources == "covid_radiography",
        "pooled_test": np.ones(len(test), bool),
    }.items():
        evaluation[source] = {}
        for index, finding in enumerate(FINDINGS):
            known = rows & (mask[:, index] == 1)
            labels = targets[known, index]
            if labels.min() == labels.max():
                continue  # one class only: no AUC, nothing honest to report
            evaluation[source][finding] = finding_report(labels, probabilities[known, index], thresholds[finding], seed)

    kermany = sources == "kermany"
    result = {
        "model": {"name": classifier.info.name, "version": classifier.info.version, "sha256": classifier.info.sha256},
        "thresholds": thresholds,
        "targets": TARGETS,
        "evaluation": evaluation,
        "three_way": three_way([e.subtype for e, k in zip(test, kermany) if k], probabilities[kermany], thresholds),
        "abstention": {
            "false_abstain_rate": {
                "kermany_test": float(abstained[kermany].mean()),
                "covid_test": float(abstained[~kermany].mean()),
                "all_test": float(abstained.mean()),
            },
            "ood_threshold": float(classifier.ood_threshold),
            "probes": {},
        },
    }
    probes = _probe_scans(shared_dir)
    for (name, scan), prediction in zip(probes.items(), classifier.predict(list(probes.values()))):
        result["abstention"]["probes"][name] = {
            "abstained": prediction.abstained,
            "reason": prediction.abstain_reason,
            "ood_score": prediction.ood_score,
            "ood_alone_abstains": prediction.ood_score > classifier.ood_threshold,
        }
    by_path = {str(e.path.relative_to(shared_dir)): p for e, p in zip(test, predictions)}
    reference = {name: by_path[name].probabilities for name in REFERENCE_IMAGES}
    return result, reference


def write_plots(metrics: dict, directory: Path) -> list[Path]:
    """Write the analyst pages' figures as plotly JSON (``plotly.io.read_json`` opens them).

    Args:
        metrics: The report written to ``metrics.json``.
        directory: Output folder, created if needed.

    Returns:
        The files written.
    """
    from core import performance

    figures = {"training": performance.training_figure(metrics), "three_way": performance.three_way_figure(metrics)}
    for source in metrics["evaluation"]:
        figures[f"roc_{source}"] = performance.roc_figure(metrics, source)
        figures[f"reliability_{source}"] = performance.reliability_figure(metrics, source)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in figures.items():
        if figure is not None:
            written.append(directory / f"{name}.json")
            figure.write_json(written[-1])
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description="Evaluate the checkpoint on the official test splits.")
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=MODELS_DIR / "metrics.json")
    args = parser.parse_args(argv)
    classifier = load_classifier(args.checkpoint)
    metrics, reference = evaluate(classifier, load_settings().shared_data_dir)
    training = args.out.with_name("training_metrics.json")
    if training.is_file():
        metrics["training"] = json.loads(training.read_text())
    args.out.write_text(json.dumps(metrics, indent=2))
    args.out.with_name("reference_predictions.json").write_text(json.dumps(reference, indent=2))
    write_plots(metrics, args.out.parent / "plots")
    kermany = metrics["evaluation"]["kermany_test"]["pneumonia"]
    print(
        f"kermany pneumonia AUC {kermany['auc']:.4f} accuracy {kermany['accuracy']:.4f}; "
        f"3-way {metrics['three_way']['accuracy']:.4f}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
