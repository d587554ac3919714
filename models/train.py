"""Train the classifier: ``python -m models.train``.

Seeded and reproducible on one machine. Writes the checkpoint (weights, per-finding
temperatures and thresholds, the out-of-distribution model) and a training metrics
JSON. Validation data (carved from train by patient) drives early stopping,
calibration and thresholds; the test splits are never read here.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from core.findings import FINDINGS
from core.settings import load_settings
from models.architecture import ARCHITECTURE_NAME, ChestXrayNet
from models.augment import augment
from models.calibration import choose_threshold, fit_temperature
from models.checkpoint import load_checkpoint, save_checkpoint
from models.data import Example, load_manifest, split_examples
from models.dataset import load_tensors
from models.metrics import roc_auc
from models.ood import fit_feature_gaussian
from models.preprocess import INPUT_SIZE

MODELS_DIR = Path(__file__).resolve().parent
MODEL_VERSION = "1.1.0"
#: Strengths (``models.augment``) of the perturbed validation copies. Model selection
#: uses the first; temperatures and thresholds use clean validation plus all of them.
VALIDATION_SHIFTS = (1.0, 1.5)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch, and ask PyTorch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def masked_bce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy averaged over the known labels only."""
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (loss * mask).sum() / mask.sum().clamp_min(1)


@torch.inference_mode()
def predict_logits(model: ChestXrayNet, images: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Logits and pooled features of a tensor of preprocessed images, in eval mode."""
    model.eval()
    logits, features = [], []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        embedding = model.embed(batch)
        features.append(embedding.numpy())
        logits.append(model.head(embedding).numpy())
    return np.concatenate(logits), np.concatenate(features)


def per_finding_auc(logits: np.ndarray, targets: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """AUC of each finding over the examples whose label is known."""
    aucs = {}
    for index, finding in enumerate(FINDINGS):
        known = mask[:, index] == 1
        aucs[finding] = roc_auc(targets[known, index], logits[known, index])
    return aucs


def fit_ood(model: ChestXrayNet, fit_images: torch.Tensor, val_images: torch.Tensor, size: int, seed: int):
    """Fit the out-of-distribution Gaussian on a seeded random sample of the fit images.

    Its thresholds come from the validation images and their negatives (``-image`` is
    exactly the preprocessed negative, as standardisation is linear).

    The sample must be random: the fit set is in manifest order (one source after the
    other), and a Gaussian of one source alone would call the other source out of
    distribution.
    """
    index = np.random.default_rng(seed).permutation(len(fit_images))[:size]
    _, fit_features = predict_logits(model, fit_images[torch.from_numpy(index)])
    _, val_features = predict_logits(model, val_images)
    _, inverted_features = predict_logits(model, -val_images)
    return fit_feature_gaussian(fit_features, val_features, inverted_features)


def refit_ood(args: argparse.Namespace) -> None:
    """Re-fit only the out-of-distribution model of an existing checkpoint (weights untouched)."""
    seed_everything(args.seed)
    torch.set_num_threads(args.threads)
    checkpoint = load_checkpoint(args.out)
    splits = split_examples(load_manifest(load_settings().shared_data_dir), seed=args.seed)
    fit_images = load_tensors(splits["fit"], checkpoint.input_size, "fit images")
    val_images = load_tensors(splits["validation"], checkpoint.input_size, "validation images")
    ood = fit_ood(checkpoint.model, fit_images, val_images, args.ood_fit_size, args.seed)
    save_checkpoint(
        args.out,
        model=checkpoint.model,
        version=checkpoint.version,
        input_size=checkpoint.input_size,
        temperatures=checkpoint.temperatures,
        thresholds=checkpoint.thresholds,
        ood=ood,
        extra=checkpoint.extra | {"ood_refit": True},
    )
    metrics_path = args.out.with_name("training_metrics.json")
    metrics = json.loads(metrics_path.read_text())
    metrics["ood_threshold"] = ood.threshold
    metrics["ood_inversion_margin"] = ood.inversion_margin
    metrics_path.write_text(json.dumps(metrics, indent=2))
    print(f"out-of-distribution threshold {ood.threshold:.2f}, inversion margin {ood.inversion_margin:.2f}; checkpoint {args.out}")


def perturbed_copies(images: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """Seeded perturbed copies of the validation images, one per ``VALIDATION_SHIFTS`` strength."""
    generator = torch.Generator().manual_seed(seed)
    return [augment(images, generator, strength) for strength in VALIDATION_SHIFTS]


def calibrate(
    views: list[np.ndarray], targets: np.ndarray, mask: np.ndarray
) -> tuple[dict[str, float], dict[str, float]]:
    """Fit each finding's temperature and threshold on clean and perturbed validation.

    Args:
        views: Logits (N, F) of the validation images, clean first, then each perturbed copy.
        targets: 0/1 labels (N, F).
        mask: 1 where a label is known (N, F).

    Returns:
        ``(temperatures, thresholds)`` keyed by finding.
    """
    logits = np.concatenate(views)
    targets, mask = np.tile(targets, (len(views), 1)), np.tile(mask, (len(views), 1))
    temperatures, thresholds = {}, {}
    for index, finding in enumerate(FINDINGS):
        known = mask[:, index] == 1
        temperatures[finding] = fit_temperature(logits[known, index], targets[known, index])
        calibrated = 1 / (1 + np.exp(-logits[known, index] / temperatures[finding]))
        thresholds[finding] = choose_threshold(calibrated, targets[known, index])
    return temperatures, thresholds


def stack_labels(examples: list[Example]) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and known-label masks of ``examples`` as (N, F) tensors."""
    targets = torch.from_numpy(np.stack([e.target for e in examples]))
    mask = torch.from_numpy(np.stack([e.mask for e in examples]))
    return targets, mask


def train(args: argparse.Namespace) -> dict:
    """Run the whole training; returns the training metrics written to JSON."""
    started = time.perf_counter()
    seed_everything(args.seed)
    torch.set_num_threads(args.threads)
    settings = load_settings()
    splits = split_examples(load_manifest(settings.shared_data_dir), seed=args.seed)
    fit, validation = splits["fit"], splits["validation"]
    if args.limit:
        rng = random.Random(args.seed)
        fit = rng.sample(fit, min(args.limit, len(fit)))
        validation = rng.sample(validation, min(args.limit // 2, len(validation)))

    fit_images = load_tensors(fit, args.size, "fit images")
    val_images = load_tensors(validation, args.size, "validation images")
    fit_targets, fit_mask = stack_labels(fit)
    val_targets, val_mask = stack_labels(validation)
    shifted_val = perturbed_copies(val_images, args.seed)

    model = ChestXrayNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(len(fit) / args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.2
    )
    generator = torch.Generator().manual_seed(args.seed)
    history, best_score, best_state, best_epoch = [], -1.0, None, 0
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        order = torch.randperm(len(fit), generator=generator)
        running = 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}/{args.epochs}", unit="batch")
        for step in bar:
            index = order[step * args.batch_size : (step + 1) * args.batch_size]
            images = augment(fit_images[index], generator)
            loss = masked_bce(model(images), fit_targets[index], fit_mask[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            running += loss.item()
            bar.set_postfix(loss=f"{running / (step + 1):.4f}")
        val_logits, _ = predict_logits(model, val_images)
        val_loss = masked_bce(torch.from_numpy(val_logits), val_targets, val_mask).item()
        aucs = per_finding_auc(val_logits, val_targets.numpy(), val_mask.numpy())
        shifted_logits, _ = predict_logits(model, shifted_val[0])
        shifted_aucs = per_finding_auc(shifted_logits, val_targets.numpy(), val_mask.numpy())
        # Clean validation AUCs saturate near 1; the perturbed copy still tells epochs apart.
        score = float(np.mean(list(aucs.values()) + list(shifted_aucs.values())))
        history.append(
            {
                "epoch": epoch,
                "train_loss": running / steps_per_epoch,
                "val_loss": val_loss,
                "val_auc": aucs,
                "val_auc_perturbed": shifted_aucs,
                "seconds": time.perf_counter() - epoch_start,
            }
        )
        tqdm.write(
            f"epoch {epoch}: val_loss {val_loss:.4f} val_auc {json.dumps({k: round(v, 4) for k, v in aucs.items()})}"
            f" perturbed {json.dumps({k: round(v, 4) for k, v in shifted_aucs.items()})}"
        )
        if score > best_score:
            best_score, best_epoch = score, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        if epoch == args.stop_after:
            tqdm.write(f"stopping after epoch {epoch} as asked (--stop-after)")
            break
        elapsed_minutes = (time.perf_counter() - started) / 60
        per_epoch = history[-1]["seconds"] / 60
        if elapsed_minutes + per_epoch > args.max_minutes:
            tqdm.write(f"stopping after epoch {epoch}: the {args.max_minutes}-minute budget would be exceeded")
            break

    model.load_state_dict(best_state)
    val_logits, _ = predict_logits(model, val_images)
    temperatures, thresholds = calibrate(
        [val_logits] + [predict_logits(model, view)[0] for view in shifted_val],
        val_targets.numpy(),
        val_mask.numpy(),
    )
    ood = fit_ood(model, fit_images, val_images, args.ood_fit_size, args.seed)
    seconds = time.perf_counter() - started
    metrics = {
        "architecture": ARCHITECTURE_NAME,
        "version": MODEL_VERSION,
        "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": seconds,
        "best_epoch": best_epoch,
        "history": history,
        "temperatures": temperatures,
        "thresholds": thresholds,
        "ood_threshold": ood.threshold,
        "ood_inversion_margin": ood.inversion_margin,
        "sizes": {"fit": len(fit), "validation": len(validation)},
        "arguments": vars(args) | {"out": str(args.out)},
    }
    save_checkpoint(
        args.out,
        model=model,
        version=MODEL_VERSION,
        input_size=args.size,
        temperatures=temperatures,
        thresholds=thresholds,
        ood=ood,
        extra={"trained_at": metrics["trained_at"], "seed": args.seed, "best_epoch": best_epoch},
    )
    args.out.with_name("training_metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train the chest X-ray classifier on ../shared/data.")
    parser.add_argument("--epochs", type=int, default=11)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--size", type=int, default=INPUT_SIZE)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--threads", type=int, default=max(torch.get_num_threads(), 1))
    parser.add_argument("--max-minutes", type=float, default=55.0, help="wall-clock budget; stops after the epoch that would pass it")
    parser.add_argument(
        "--stop-after", type=int, default=0,
        help="stop after this epoch (the learning-rate schedule still spans --epochs); reproduces a budget stop",
    )
    parser.add_argument("--ood-fit-size", type=int, default=4000)
    parser.add_argument("--limit", type=int, default=0, help="train on a random subset (smoke tests)")
    parser.add_argument("--out", type=Path, default=MODELS_DIR / "checkpoint.pt")
    parser.add_argument("--refit-ood", action="store_true", help="only re-fit the out-of-distribution model of --out")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = _parser().parse_args(argv)
    if args.refit_ood:
        refit_ood(args)
        return 0
    metrics = train(args)
    print(f"trained in {metrics['seconds'] / 60:.1f} min, best epoch {metrics['best_epoch']}; checkpoint {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
