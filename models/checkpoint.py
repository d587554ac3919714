"""Checkpoint files: weights plus everything inference needs, with their SHA-256."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from core.findings import FINDINGS
from models.architecture import ARCHITECTURE_NAME, ChestXrayNet
from models.calibration import PopulationCalibration
from models.ood import FeatureGaussian
from models.populations import POPULATIONS, UNKNOWN


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
        thresholds: Per-finding decision threshold on calibrated probabilities (population
            ``unknown``).
        calibration: Temperatures and thresholds per population (``models.populations``).
            Checkpoints from before 1.2.0 have one calibration, used for every population.
        ood: Out-of-distribution Gaussian and threshold.
        extra: Training facts (date, seed, best epoch).
    """

    model: ChestXrayNet
    version: str
    sha256: str
    input_size: int
    thresholds: dict[str, float]
    calibration: dict[str, PopulationCalibration]
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
    ood: FeatureGaussian,
    extra: dict,
    calibration: dict[str, PopulationCalibration] | None = None,
    temperatures: dict[str, float] | None = None,
    thresholds: dict[str, float] | None = None,
) -> None:
    """Write a checkpoint that :func:`load_checkpoint` can read without other files.

    Give either ``calibration`` (per population) or one set of ``temperatures`` and
    ``thresholds`` for every population. The ``unknown`` population's values are also written
    as the top-level ``temperatures`` and ``thresholds``, which is all that checkpoints before
    1.2.0 had.

    Raises:
        ValueError: Neither or both forms of calibration were given.
    """
    if (calibration is None) == (temperatures is None or thresholds is None):
        raise ValueError("give either calibration or both temperatures and thresholds")
    if calibration is None:
        calibration = _shared_calibration({"temperatures": temperatures, "thresholds": thresholds})
    ood_state = ood.to_state()
    payload = {
        "architecture": ARCHITECTURE_NAME,
        "findings": list(FINDINGS),
        "version": version,
        "input_size": input_size,
        "state_dict": model.state_dict(),
        "temperatures": calibration[UNKNOWN].temperatures,
        "thresholds": calibration[UNKNOWN].thresholds,
        "calibration": {
            population: fitted.to_state() for population, fitted in calibration.items()
        },
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


def _shared_calibration(values: dict) -> dict[str, PopulationCalibration]:
    # One calibration, fitted on all validation films, for every population.
    pooled = PopulationCalibration.from_state(
        values | {"fitted_on": dict.fromkeys(FINDINGS, UNKNOWN)}
    )
    return dict.fromkeys(POPULATIONS, pooled)


def _calibration(payload: dict) -> dict[str, PopulationCalibration]:
    if "calibration" in payload:
        return {
            population: PopulationCalibration.from_state(payload["calibration"][population])
            for population in POPULATIONS
        }
    return _shared_calibration(payload)  # checkpoints before 1.2.0


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
        if payload.get("architecture") != ARCHITECTURE_NAME or payload.get("findings") != list(
            FINDINGS
        ):
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
        calibration = _calibration(payload)
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
        thresholds=dict(calibration[UNKNOWN].thresholds),
        calibration=calibration,
        ood=gaussian,
        extra=dict(payload.get("extra", {})),
    )
