"""Checkpoint files: weights plus everything inference needs, with their SHA-256."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from core.findings import FINDINGS
from models.architecture import ARCHITECTURE_NAME, ChestXrayNet
from models.ood import FeatureGaussian


class CheckpointError(RuntimeError):
    """The checkpoint file is missing, corrupt or for another model."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint read back into a ready model.

    Attributes:
        model: The network in eval mode on the CPU.
        version: Model version string.
        sha256: SHA-256 of the checkpoint file.
        input_size: Network input side in pixels.
        temperatures: Per-finding temperature of the sigmoid.
        thresholds: Per-finding decision threshold on calibrated probabilities.
        ood: Out-of-distribution Gaussian and threshold.
        extra: Training facts (date, seed, best epoch).
    """

    model: ChestXrayNet
    version: str
    sha256: str
    input_size: int
    temperatures: dict[str, float]
    thresholds: dict[str, float]
    ood: FeatureGaussian
    extra: dict


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(
    path: Path,
    *,
    model: ChestXrayNet,
    version: str,
    input_size: int,
    temperatures: dict[str, float],
    thresholds: dict[str, float],
    ood: FeatureGaussian,
    extra: dict,
) -> None:
    """Write a checkpoint that :func:`load_checkpoint` can read without other files."""
    ood_state = ood.to_state()
    payload = {
        "architecture": ARCHITECTURE_NAME,
        "findings": list(FINDINGS),
        "version": version,
        "input_size": input_size,
        "state_dict": model.state_dict(),
        "temperatures": temperatures,
        "thresholds": thresholds,
        "ood": {
            "mean": torch.from_numpy(ood_state["mean"]).float(),
            "precision": torch.from_numpy(ood_state["precision"]).float(),
            "threshold": ood_state["threshold"],
            "inversion_margin": ood_state["inversion_margin"],
        },
        "extra": extra,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def load_checkpoint(path: Path) -> LoadedCheckpoint:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: Checkpoint file.

    Returns:
        The model (eval mode, CPU) and its calibration.

    Raises:
        CheckpointError: The file is missing, unreadable or describes another model.
    """
    if not path.is_file():
        raise CheckpointError(f"The model file {path.name} is missing.")
    try:
        # weights_only: a checkpoint is data, never code to run.
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("architecture") != ARCHITECTURE_NAME or payload.get("findings") != list(FINDINGS):
            raise CheckpointError("The model file is for a different model.")
        model = ChestXrayNet()
        model.load_state_dict(payload["state_dict"])
        ood = payload["ood"]
        gaussian = FeatureGaussian(
            mean=ood["mean"].double().numpy(),
            precision=ood["precision"].double().numpy(),
            threshold=float(ood["threshold"]),
            inversion_margin=float(ood.get("inversion_margin", math.inf)),
        )
    except CheckpointError:
        raise
    except Exception as exc:  # any unpickling or shape error means the file is unusable
        raise CheckpointError("The model file is damaged and cannot be loaded.") from exc
    model.eval()
    return LoadedCheckpoint(
        model=model,
        version=str(payload["version"]),
        sha256=file_sha256(path),
        input_size=int(payload["input_size"]),
        temperatures={k: float(v) for k, v in payload["temperatures"].items()},
        thresholds={k: float(v) for k, v in payload["thresholds"].items()},
        ood=gaussian,
        extra=dict(payload.get("extra", {})),
    )
