"""Score a checkpoint on validation only: ``python -m models.validate [CHECKPOINT ...]``.

The rule for replacing the shipped model is decided here, before any test split is
read: a candidate must not have a lower mean AUC on clean validation or on either
perturbed copy (``models.train.VALIDATION_SHIFTS``).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

from core.settings import load_settings
from models.checkpoint import load_checkpoint
from models.data import load_manifest, split_examples
from models.dataset import load_tensors
from models.train import MODELS_DIR, VALIDATION_SHIFTS, stack_labels, per_finding_auc, perturbed_copies, predict_logits


def validation_aucs(checkpoint_path: Path, seed: int = 20261122, limit: int = 0) -> dict[str, dict[str, float]]:
    """AUC per finding on clean validation and on each perturbed copy.

    Args:
        checkpoint_path: Checkpoint to score.
        seed: Seed of the patient split and of the perturbations (the training seed).
        limit: Score a random subset of this many validation images (0: all).

    Returns:
        ``{"clean": {finding: auc}, "perturbed 1.0": {...}, ...}``.
    """
    checkpoint = load_checkpoint(checkpoint_path)
    validation = split_examples(load_manifest(load_settings().shared_data_dir), seed=seed)["validation"]
    if limit:
        validation = random.Random(seed).sample(validation, min(limit, len(validation)))
    images = load_tensors(validation, checkpoint.input_size, "validation images")
    targets, mask = (array.numpy() for array in stack_labels(validation))
    views = {"clean": images} | {
        f"perturbed {strength}": copy for strength, copy in zip(VALIDATION_SHIFTS, perturbed_copies(images, seed))
    }
    return {name: per_finding_auc(predict_logits(checkpoint.model, view)[0], targets, mask) for name, view in views.items()}


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line per checkpoint with its AUCs and their mean per view."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", type=Path, default=[MODELS_DIR / "checkpoint.pt"])
    parser.add_argument("--limit", type=int, default=0, help="score a random subset of validation")
    args = parser.parse_args(argv)
    for path in args.checkpoints:
        aucs = validation_aucs(path, limit=args.limit)
        means = {view: float(np.nanmean(list(values.values()))) for view, values in aucs.items()}
        print(json.dumps({"checkpoint": str(path), "mean_auc": means, "auc": aucs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
