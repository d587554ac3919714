"""Train the classifier: ``python -m models.train``.

Seeded and reproducible on one machine. Writes the checkpoint (weights, per-finding
temperatures and thresholds per population, the out-of-distribution model) and a training
metrics JSON. Validation data (carved from train by patient, plus the publishers' val
splits) drives early stopping, calibration and thresholds; the test splits are never read
here. The few NIH adult films are repeated ``--adult-repeats`` times per epoch so that
they are not drowned by the children's and COVID-radiography's films.

``--recalibrate`` re-derives the thresholds of an existing checkpoint (weights and
temperatures kept) and ``--refit-ood`` its out-of-distribution model; neither trains.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from core.findings import FINDINGS
from core.settings import load_settings
from models.architecture import ARCHITECTURE_NAME, ChestXrayNet
from models.augment import augment
from models.calibration import (
    MAX_NO_FINDING_FLAG_RATE,
    PopulationCalibration,
    cap_flag_rate,
    cap_no_finding_flags,
    fit_populations,
    no_finding_rows,
    population_rows,
)
from models.checkpoint import load_checkpoint, save_checkpoint
from models.data import Example, load_manifest, split_examples
from models.dataset import load_tensors
from models.metrics import flags, roc_auc
from models.ood import fit_feature_gaussian
from models.populations import ADULT, POPULATIONS, UNKNOWN
from models.preprocess import INPUT_SIZE

MODELS_DIR = Path(__file__).resolve().parent
#: Version written by training and by ``--recalibrate``. 1.3.0: the 1.2.0 weights and
#: temperatures with every threshold capped at ``MAX_NO_FINDING_FLAG_RATE`` of no-finding
#: validation films.
MODEL_VERSION = "1.3.0"
#: The adult source whose pneumonia AUC joins model selection and the adoption rule.
ADULT_SOURCE = "nih_adult"
#: Largest share of the NIH validation films (all certain covid19 negatives, from 2017) that
#: the covid19 threshold of adults and of unknown age may flag; half the 5% test target, as
#: 104 films estimate the rate loosely.
MAX_ADULT_COVID19_FLAGS = 0.025
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
def predict_logits(
    model: ChestXrayNet, images: torch.Tensor, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
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
    """AUC of each finding over the examples whose label is known (NaN with one class only)."""
    aucs = {}
    for index, finding in enumerate(FINDINGS):
        known = mask[:, index] == 1
        labels = targets[known, index]
        aucs[finding] = (
            roc_auc(labels, logits[known, index]) if 0 < labels.sum() < len(labels) else math.nan
        )
    return aucs


def selection_score(pooled: list[dict[str, float]], adult: list[dict[str, float]]) -> float:
    """Model-selection score: mean of the pooled per-finding AUCs and the adult pneumonia AUC.

    Args:
        pooled: Per-finding AUCs on all validation films, one dict per view (clean, perturbed).
        adult: Per-finding AUCs on the NIH adult validation films, one dict per view.

    Returns:
        The mean over views of the four pooled AUCs and the adult pneumonia AUC.
    """
    values = [v for aucs in pooled for v in aucs.values()] + [aucs["pneumonia"] for aucs in adult]
    return float(np.nanmean(values))


def epoch_order(sources: list[str], adult_repeats: int, generator: torch.Generator) -> torch.Tensor:
    """Shuffled fit indices of one epoch, each NIH adult film ``adult_repeats`` times.

    Args:
        sources: Source of each fit example.
        adult_repeats: How often each ``ADULT_SOURCE`` film is drawn per epoch (1: once).
        generator: Seeded random generator.

    Returns:
        1-D tensor of indices into the fit set.
    """
    repeats = torch.tensor([adult_repeats if source == ADULT_SOURCE else 1 for source in sources])
    indices = torch.repeat_interleave(torch.arange(len(sources)), repeats)
    return indices[torch.randperm(len(indices), generator=generator)]


def fit_ood(
    model: ChestXrayNet, fit_images: torch.Tensor, val_images: torch.Tensor, size: int, seed: int
):
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
        calibration=checkpoint.calibration,
        ood=ood,
        extra=checkpoint.extra | {"ood_refit": True},
    )
    metrics_path = args.out.with_name("training_metrics.json")
    metrics = json.loads(metrics_path.read_text())
    metrics["ood_threshold"] = ood.threshold
    metrics["ood_inversion_margin"] = ood.inversion_margin
    metrics_path.write_text(json.dumps(metrics, indent=2))
    print(
        f"out-of-distribution threshold {ood.threshold:.2f}, "
        f"inversion margin {ood.inversion_margin:.2f}; checkpoint {args.out}"
    )


def recalibrate(args: argparse.Namespace) -> dict:
    """Re-derive the thresholds of an existing checkpoint (weights and temperatures kept).

    Scores the validation films (clean and perturbed, as training does), chooses each
    population's thresholds with :func:`fit_calibration` at the checkpoint's own
    temperatures, and writes the checkpoint back as ``MODEL_VERSION``, with the earlier
    version and SHA-256 in ``extra["recalibrated"]``. ``training_metrics.json`` beside it,
    where present, gets the new calibration and the before/after :func:`flag_report`.

    Returns:
        ``{"from", "version", "uncapped_thresholds", "before", "after"}``.
    """
    seed_everything(args.seed)
    torch.set_num_threads(args.threads)
    checkpoint = load_checkpoint(args.out)
    validation = split_examples(load_manifest(load_settings().shared_data_dir), seed=args.seed)[
        "validation"
    ]
    if args.limit:
        validation = random.Random(args.seed).sample(validation, min(args.limit, len(validation)))
    images = load_tensors(validation, checkpoint.input_size, "validation images")
    scores = validation_scores(checkpoint.model, images, validation, args.seed)
    temperatures = {p: checkpoint.calibration[p].temperatures for p in POPULATIONS}
    calibration = fit_calibration(scores, temperatures)
    uncapped = fit_populations(
        scores.logits, scores.targets, scores.mask, scores.populations, FINDINGS, temperatures
    )
    result = {
        "from": {"version": checkpoint.version, "sha256": checkpoint.sha256},
        "version": MODEL_VERSION,
        "recalibrated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "max_no_finding_flag_rate": MAX_NO_FINDING_FLAG_RATE,
        "max_adult_covid19_flags": MAX_ADULT_COVID19_FLAGS,
        "validation_films": len(validation),
        "uncapped_thresholds": {p: uncapped[p].thresholds for p in POPULATIONS},
        "before": flag_report(scores, checkpoint.calibration),
        "after": flag_report(scores, calibration),
    }
    save_checkpoint(
        args.out,
        model=checkpoint.model,
        version=MODEL_VERSION,
        input_size=checkpoint.input_size,
        calibration=calibration,
        ood=checkpoint.ood,
        extra=checkpoint.extra
        | {
            "recalibrated": {
                key: result[key] for key in ("from", "recalibrated_at", "max_no_finding_flag_rate")
            }
            | {"weights_unchanged": True, "temperatures_unchanged": True, "seed": args.seed}
        },
    )
    metrics_path = args.out.with_name("training_metrics.json")
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        metrics["calibration"] = {p: fitted.to_state() for p, fitted in calibration.items()}
        metrics["recalibration"] = result
        metrics_path.write_text(json.dumps(metrics, indent=2))
    return result


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _threshold_lines(result: dict) -> list[str]:
    lines = []
    for population in POPULATIONS:
        before, after = result["before"][population], result["after"][population]
        for finding in FINDINGS:
            old, new = before["findings"][finding], after["findings"][finding]
            lines.append(
                f"{population} {finding}: threshold {old['threshold']:.3f} -> "
                f"{new['threshold']:.3f}; no-finding films flagged "
                f"{_share(old['no_finding_flag_rate'])} -> {_share(new['no_finding_flag_rate'])} "
                f"(n {after['no_finding_films']}); sensitivity {_share(old['sensitivity'])} -> "
                f"{_share(new['sensitivity'])} (n {new['positives']})"
            )
    return lines


def perturbed_copies(images: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """Seeded perturbed copies of the validation images, one per ``VALIDATION_SHIFTS`` strength."""
    generator = torch.Generator().manual_seed(seed)
    return [augment(images, generator, strength) for strength in VALIDATION_SHIFTS]


@dataclass(frozen=True)
class ValidationScores:
    """Validation logits and labels, the perturbed copies stacked below the clean films.

    Attributes:
        logits: Raw logits (N, F).
        targets: 0/1 labels (N, F).
        mask: 1 where a label is known (N, F).
        populations: ``child`` or ``adult`` per row (N,).
        nih: Boolean (N,): the film is from ``ADULT_SOURCE``.
        clean: Boolean (N,): the row is a clean film, not a perturbed copy.
    """

    logits: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    populations: np.ndarray
    nih: np.ndarray
    clean: np.ndarray


def validation_scores(
    model: ChestXrayNet, images: torch.Tensor, examples: list[Example], seed: int
) -> ValidationScores:
    """Score clean validation and its seeded perturbed copies (``VALIDATION_SHIFTS``).

    Args:
        model: The network.
        images: Preprocessed validation images.
        examples: The validation examples, in the order of ``images``.
        seed: Seed of the perturbed copies.
    """
    views = [images] + perturbed_copies(images, seed)
    logits = np.concatenate([predict_logits(model, view)[0] for view in views])
    targets, mask = (np.tile(array.numpy(), (len(views), 1)) for array in stack_labels(examples))
    copies = len(views)
    return ValidationScores(
        logits=logits,
        targets=targets,
        mask=mask,
        populations=np.tile(np.array([e.population for e in examples]), copies),
        nih=np.tile(np.array([e.source == ADULT_SOURCE for e in examples]), copies),
        clean=np.arange(len(logits)) < len(examples),
    )


def fit_calibration(
    scores: ValidationScores, temperatures: dict[str, dict[str, float]] | None = None
) -> dict[str, PopulationCalibration]:
    """Each population's temperatures and thresholds from validation scores.

    Temperatures by NLL and thresholds by Youden's J (``models.calibration.fit_populations``),
    then two caps that only ever raise a threshold:

    - covid19 for adults and unknown age flags at most ``MAX_ADULT_COVID19_FLAGS`` of the NIH
      validation films (certain negatives, pneumonias included);
    - every finding of every population flags at most ``MAX_NO_FINDING_FLAG_RATE`` of that
      population's no-finding validation films (all no-finding films for unknown age).

    Args:
        scores: :func:`validation_scores`.
        temperatures: ``{population: {finding: temperature}}`` to keep (re-calibration of a
            shipped model); None fits them.

    Returns:
        ``{population: PopulationCalibration}``.
    """
    logits, populations = scores.logits, scores.populations
    calibration = fit_populations(
        logits, scores.targets, scores.mask, populations, FINDINGS, temperatures
    )
    covid19 = FINDINGS.index("covid19")
    # Youden's J weighs COVID-radiography's 1,068 films against 94 NIH ones and lets covid19
    # be flagged on many adult pneumonias; cap the false flags on the NIH films instead.
    for population in (ADULT, UNKNOWN):
        rows = scores.nih & population_rows(populations, population)
        fitted = calibration[population]
        negatives = 1 / (1 + np.exp(-logits[rows, covid19] / fitted.temperatures["covid19"]))
        threshold = cap_flag_rate(fitted.thresholds["covid19"], negatives, MAX_ADULT_COVID19_FLAGS)
        calibration[population] = replace(
            fitted, thresholds=fitted.thresholds | {"covid19": threshold}
        )
    return cap_no_finding_flags(
        calibration, logits, no_finding_rows(scores.targets, scores.mask), populations, FINDINGS
    )


def calibrate(
    model: ChestXrayNet, images: torch.Tensor, examples: list[Example], seed: int
) -> dict[str, PopulationCalibration]:
    """Fit each population's temperatures and thresholds on clean and perturbed validation.

    Args:
        model: The trained network.
        images: Preprocessed validation images.
        examples: The validation examples, in the order of ``images``.
        seed: Seed of the perturbed copies.

    Returns:
        ``{population: PopulationCalibration}`` (:func:`fit_calibration`).
    """
    return fit_calibration(validation_scores(model, images, examples, seed))


def _rate(flagged: np.ndarray) -> float | None:
    return float(flagged.mean()) if len(flagged) else None


def flag_report(scores: ValidationScores, calibration: dict[str, PopulationCalibration]) -> dict:
    """What each population's thresholds flag on validation.

    Args:
        scores: :func:`validation_scores`.
        calibration: The calibration to judge.

    Returns:
        ``{population: {"no_finding_films", "any_finding": {...}, "findings": {finding:
        {...}}}}``: per finding the ``threshold``, the share of the population's no-finding
        films flagged (``no_finding_flag_rate``: clean films; ``..._with_copies``: clean and
        perturbed, the rows the cap holds to ``MAX_NO_FINDING_FLAG_RATE``), the number of
        positives and the ``sensitivity`` on them (same two views; None without positives);
        ``any_finding`` is the share of no-finding films flagged for at least one finding.
        ``unknown`` counts every film.
    """
    no_finding = no_finding_rows(scores.targets, scores.mask)
    report = {}
    for population in POPULATIONS:
        fitted = calibration[population]
        rows = population_rows(scores.populations, population)
        negatives = rows & no_finding
        findings, any_flag = {}, np.zeros(len(rows), bool)
        for index, finding in enumerate(FINDINGS):
            probabilities = 1 / (
                1 + np.exp(-scores.logits[:, index] / fitted.temperatures[finding])
            )
            flagged = flags(probabilities, fitted.thresholds[finding])
            any_flag |= flagged
            positives = rows & (scores.mask[:, index] == 1) & (scores.targets[:, index] == 1)
            findings[finding] = {
                "threshold": fitted.thresholds[finding],
                "no_finding_flag_rate": _rate(flagged[negatives & scores.clean]),
                "no_finding_flag_rate_with_copies": _rate(flagged[negatives]),
                "positives": int((positives & scores.clean).sum()),
                "sensitivity": _rate(flagged[positives & scores.clean]),
                "sensitivity_with_copies": _rate(flagged[positives]),
            }
        report[population] = {
            "no_finding_films": int((negatives & scores.clean).sum()),
            "any_finding": {
                "no_finding_flag_rate": _rate(any_flag[negatives & scores.clean]),
                "no_finding_flag_rate_with_copies": _rate(any_flag[negatives]),
            },
            "findings": findings,
        }
    return report


def stack_labels(examples: list[Example]) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets and known-label masks of ``examples`` as (N, F) tensors."""
    targets = torch.from_numpy(np.stack([e.target for e in examples]))
    mask = torch.from_numpy(np.stack([e.mask for e in examples]))
    return targets, mask


def validation_report(
    model: ChestXrayNet,
    views: list[torch.Tensor],
    targets: np.ndarray,
    mask: np.ndarray,
    adult: np.ndarray,
) -> tuple[list[dict[str, float]], list[dict[str, float]], float]:
    """Per-finding AUCs of each validation view, pooled and on the NIH adult films.

    Args:
        model: The network.
        views: Clean validation images, then each perturbed copy used for model selection.
        targets: 0/1 labels (N, F).
        mask: 1 where a label is known (N, F).
        adult: Boolean (N,): the film is from ``ADULT_SOURCE``.

    Returns:
        ``(pooled AUCs per view, adult AUCs per view, validation loss of the clean view)``.
    """
    pooled, adults, loss = [], [], math.nan
    for view in views:
        logits, _ = predict_logits(model, view)
        if math.isnan(loss):
            loss = masked_bce(
                torch.from_numpy(logits), torch.from_numpy(targets), torch.from_numpy(mask)
            ).item()
        pooled.append(per_finding_auc(logits, targets, mask))
        adults.append(per_finding_auc(logits[adult], targets[adult], mask[adult]))
    return pooled, adults, loss


def _rounded(aucs: dict[str, float]) -> str:
    return json.dumps({k: round(v, 4) for k, v in aucs.items() if not math.isnan(v)})


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
    val_targets, val_mask = (array.numpy() for array in stack_labels(validation))
    val_adult = np.array([e.source == ADULT_SOURCE for e in validation])
    # Only the first perturbed copy takes part in model selection (see VALIDATION_SHIFTS).
    selection_views = [val_images, perturbed_copies(val_images, args.seed)[0]]
    fit_sources = [e.source for e in fit]

    # Fine-tuning starts from a shipped model's weights; its calibration is fitted anew below.
    initial = load_checkpoint(args.init) if args.init else None
    model = initial.model if initial else ChestXrayNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    draws_per_epoch = len(fit) + (args.adult_repeats - 1) * fit_sources.count(ADULT_SOURCE)
    steps_per_epoch = math.ceil(draws_per_epoch / args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=args.lr,
        epochs=args.epochs,
        steps_per_epoch=steps_per_epoch,
        pct_start=0.2,
    )
    generator = torch.Generator().manual_seed(args.seed)
    history, best_score, best_state, best_epoch = [], -1.0, None, 0
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        order = epoch_order(fit_sources, args.adult_repeats, generator)
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
        pooled, adult, val_loss = validation_report(
            model, selection_views, val_targets, val_mask, val_adult
        )
        # Clean validation AUCs saturate near 1; the perturbed copy and the adult films still
        # tell epochs apart.
        score = selection_score(pooled, adult)
        history.append(
            {
                "epoch": epoch,
                "train_loss": running / steps_per_epoch,
                "val_loss": val_loss,
                "val_auc": pooled[0],
                "val_auc_perturbed": pooled[1],
                "val_auc_adult": adult[0],
                "val_auc_adult_perturbed": adult[1],
                "selection_score": score,
                "seconds": time.perf_counter() - epoch_start,
            }
        )
        tqdm.write(
            f"epoch {epoch}: val_loss {val_loss:.4f} val_auc {_rounded(pooled[0])} "
            f"perturbed {_rounded(pooled[1])}"
            f" adult {_rounded(adult[0])} adult perturbed {_rounded(adult[1])} score {score:.4f}"
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
            tqdm.write(
                f"stopping after epoch {epoch}: "
                f"the {args.max_minutes}-minute budget would be exceeded"
            )
            break

    if best_state is None:
        raise RuntimeError("no epoch finished, so there is no model to save")
    model.load_state_dict(best_state)
    calibration = calibrate(model, val_images, validation, args.seed)
    ood = fit_ood(model, fit_images, val_images, args.ood_fit_size, args.seed)
    seconds = time.perf_counter() - started
    metrics = {
        "architecture": ARCHITECTURE_NAME,
        "version": MODEL_VERSION,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": seconds,
        "best_epoch": best_epoch,
        "history": history,
        "calibration": {
            population: fitted.to_state() for population, fitted in calibration.items()
        },
        "ood_threshold": ood.threshold,
        "ood_inversion_margin": ood.inversion_margin,
        "sizes": {
            "fit": len(fit),
            "fit_adult": fit_sources.count(ADULT_SOURCE),
            "draws_per_epoch": draws_per_epoch,
            "validation": len(validation),
            "validation_adult": int(val_adult.sum()),
        },
        "arguments": vars(args)
        | {"out": str(args.out), "init": str(args.init) if args.init else None},
        "initialised_from": {"version": initial.version, "sha256": initial.sha256}
        if initial
        else None,
    }
    save_checkpoint(
        args.out,
        model=model,
        version=MODEL_VERSION,
        input_size=args.size,
        calibration=calibration,
        ood=ood,
        extra={
            "trained_at": metrics["trained_at"],
            "seed": args.seed,
            "best_epoch": best_epoch,
            "initialised_from": {"version": initial.version, "sha256": initial.sha256}
            if initial
            else None,
        },
    )
    args.out.with_name("training_metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Train the chest X-ray classifier on ../shared/data."
    )
    parser.add_argument("--epochs", type=int, default=11)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--size", type=int, default=INPUT_SIZE)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--threads", type=int, default=max(torch.get_num_threads(), 1))
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=55.0,
        help="wall-clock budget; stops after the epoch that would pass it",
    )
    parser.add_argument(
        "--stop-after",
        type=int,
        default=0,
        help=(
            "stop after this epoch (the learning-rate schedule still spans --epochs); "
            "reproduces a budget stop"
        ),
    )
    parser.add_argument(
        "--adult-repeats",
        type=int,
        default=4,
        help=f"draws of each {ADULT_SOURCE} fit film per epoch (its 307 films among 9,443 others)",
    )
    parser.add_argument("--ood-fit-size", type=int, default=4000)
    parser.add_argument(
        "--limit", type=int, default=0, help="train on a random subset (smoke tests)"
    )
    parser.add_argument("--out", type=Path, default=MODELS_DIR / "checkpoint.pt")
    parser.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from this checkpoint's weights (fine-tuning) instead of random weights",
    )
    parser.add_argument(
        "--refit-ood",
        action="store_true",
        help="only re-fit the out-of-distribution model of --out",
    )
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help=(
            "only re-derive the thresholds of --out on validation (weights and temperatures "
            f"kept) and write it back as version {MODEL_VERSION}"
        ),
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = _parser().parse_args(argv)
    if args.refit_ood:
        refit_ood(args)
        return 0
    if args.recalibrate:
        started = time.perf_counter()
        result = recalibrate(args)
        print("\n".join(_threshold_lines(result)))
        print(
            f"recalibrated {result['from']['version']} -> {result['version']} in "
            f"{(time.perf_counter() - started) / 60:.1f} min; checkpoint {args.out}"
        )
        return 0
    metrics = train(args)
    print(
        f"trained in {metrics['seconds'] / 60:.1f} min, best epoch {metrics['best_epoch']}; "
        f"checkpoint {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
