"""Score checkpoints on validation only: ``python -m models.validate [OLD NEW]``.

The rule for replacing the shipped model is decided here, before any test split is read.
With two checkpoints, the second (the candidate) replaces the first only if, on validation:

1. its mean AUC over the findings on the Kermany and COVID-radiography validation films (the
   validation set on which 1.1.0 was adopted) is not lower than the old model's by more than
   ``MAX_EARLIER_AUC_LOSS`` on clean validation or on either perturbed copy
   (``models.train.VALIDATION_SHIFTS``);
2. its pneumonia AUC on the NIH adult validation films (clean) is at least
   ``MIN_ADULT_PNEUMONIA_AUC`` and higher than the old model's;
3. it flags covid19 on at most ``MAX_ADULT_COVID19_FLAG_RATE`` of the NIH adult validation
   films (all certain covid19 negatives), each at the threshold of its patient's population.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from core.findings import FINDINGS
from core.settings import load_settings
from models.checkpoint import load_checkpoint
from models.data import Example, load_manifest, split_examples
from models.dataset import load_tensors
from models.metrics import flags
from models.train import (
    ADULT_SOURCE,
    MODELS_DIR,
    VALIDATION_SHIFTS,
    per_finding_auc,
    perturbed_copies,
    predict_logits,
    stack_labels,
)

MAX_EARLIER_AUC_LOSS = 0.005
MIN_ADULT_PNEUMONIA_AUC = 0.70
MAX_ADULT_COVID19_FLAG_RATE = 0.05


def _validation(seed: int, limit: int) -> list[Example]:
    validation = split_examples(load_manifest(load_settings().shared_data_dir), seed=seed)[
        "validation"
    ]
    if limit:
        validation = random.Random(seed).sample(validation, min(limit, len(validation)))
    return validation


def validation_report(checkpoint_path: Path, seed: int = 20261122, limit: int = 0) -> dict:
    """Everything the adoption rule reads, for one checkpoint.

    Args:
        checkpoint_path: Checkpoint to score.
        seed: Seed of the patient split and of the perturbations (the training seed).
        limit: Score a random subset of this many validation images (0: all).

    Returns:
        ``auc`` (all validation films), ``auc_earlier`` (Kermany and COVID-radiography films)
        and ``auc_adult`` (NIH films), each ``{view: {finding: auc}}`` with views ``clean``,
        ``perturbed 1.0``, ...; ``mean_auc`` and ``mean_auc_earlier`` per view (NaN AUCs of
        findings without both classes left out); and ``adult_covid19_flag_rate`` with its
        ``adult_films`` count.
    """
    checkpoint = load_checkpoint(checkpoint_path)
    validation = _validation(seed, limit)
    images = load_tensors(validation, checkpoint.input_size, "validation images")
    targets, mask = (array.numpy() for array in stack_labels(validation))
    adult = np.array([e.source == ADULT_SOURCE for e in validation])
    views = {"clean": images} | {
        f"perturbed {strength}": copy
        for strength, copy in zip(VALIDATION_SHIFTS, perturbed_copies(images, seed), strict=True)
    }
    logits = {name: predict_logits(checkpoint.model, view)[0] for name, view in views.items()}
    groups = {"auc": np.ones(len(validation), bool), "auc_earlier": ~adult, "auc_adult": adult}
    report: dict = {
        key: {
            name: per_finding_auc(values[rows], targets[rows], mask[rows])
            for name, values in logits.items()
        }
        for key, rows in groups.items()
    }
    for key in ("auc", "auc_earlier"):
        report[f"mean_{key}"] = {
            view: float(np.nanmean(list(v.values()))) for view, v in report[key].items()
        }
    covid19 = FINDINGS.index("covid19")
    calibration = [checkpoint.calibration[e.population] for e in validation]
    probabilities = 1 / (
        1
        + np.exp(
            -logits["clean"][:, covid19]
            / np.array([c.temperatures["covid19"] for c in calibration])
        )
    )
    flagged = flags(probabilities, np.array([c.thresholds["covid19"] for c in calibration]))
    report["adult_films"] = int(adult.sum())
    report["adult_covid19_flag_rate"] = (
        float(flagged[adult].mean()) if adult.any() else float("nan")
    )
    return report


def adoption(old: dict, new: dict) -> dict:
    """Apply the module's adoption rule to two :func:`validation_report` results.

    Returns:
        ``{"adopt": bool, "checks": {name: {"old", "new", "passed"}}}``.
    """
    checks = {}
    for view, value in new["mean_auc_earlier"].items():
        previous = old["mean_auc_earlier"][view]
        checks[f"earlier mean AUC, {view}"] = {
            "old": previous,
            "new": value,
            "passed": value >= previous - MAX_EARLIER_AUC_LOSS,
        }
    old_adult, new_adult = (
        old["auc_adult"]["clean"]["pneumonia"],
        new["auc_adult"]["clean"]["pneumonia"],
    )
    checks["adult pneumonia AUC, clean"] = {
        "old": old_adult,
        "new": new_adult,
        "passed": new_adult >= MIN_ADULT_PNEUMONIA_AUC and new_adult > old_adult,
    }
    checks["adult covid19 flag rate"] = {
        "old": old["adult_covid19_flag_rate"],
        "new": new["adult_covid19_flag_rate"],
        "passed": new["adult_covid19_flag_rate"] <= MAX_ADULT_COVID19_FLAG_RATE,
    }
    return {"adopt": all(check["passed"] for check in checks.values()), "checks": checks}


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line per checkpoint, then the adoption verdict when given OLD and NEW."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", type=Path, default=[MODELS_DIR / "checkpoint.pt"])
    parser.add_argument("--limit", type=int, default=0, help="score a random subset of validation")
    args = parser.parse_args(argv)
    reports = []
    for path in args.checkpoints:
        reports.append(validation_report(path, limit=args.limit))
        print(json.dumps({"checkpoint": str(path)} | reports[-1]))
    if len(reports) == 2:
        print(
            json.dumps(
                {"old": str(args.checkpoints[0]), "new": str(args.checkpoints[1])}
                | adoption(*reports)
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
