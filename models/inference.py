"""The cached model layer: load the classifier once, predict in batches, explain with Grad-CAM.

The UI wraps :func:`load_classifier` in ``st.cache_resource`` so one model serves every
session of a process; nothing per-user is kept here.

Each scan is calibrated for its patient's population (``models.populations``): children and
adults by age where the caller knows it, otherwise the values fitted on all validation
films. :meth:`Classifier.validity` says whether a finding was shown to work for a patient's
age group, from the test evaluation of this exact checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from core.errors import UserError
from core.findings import FINDINGS
from core.imaging import DecodedScan
from core.scope import not_a_chest_radiograph
from core.settings import load_settings
from models.architecture import ARCHITECTURE_NAME
from models.checkpoint import CheckpointError, LoadedCheckpoint, load_checkpoint
from models.populations import POPULATIONS, UNKNOWN, population_for_age
from models.preprocess import preprocess
from models.reports import METRICS_PATH
from models.trajectory import NOISE_PATH, load_noise_bands
from models.validity import FindingValidity, load_validity, not_evaluated

logger = logging.getLogger(__name__)

#: DICOM View Position (0018,5101) values of lateral views, which the model never saw.
_LATERAL_VIEWS = frozenset({"LL", "RL", "LAT", "LATERAL", "LLD", "RLD"})

_load_count = 0


class ModelUnavailable(UserError, RuntimeError):
    """The classifier cannot be used; ``str(error)`` is one sentence for the user.

    Also a ``RuntimeError``, which callers caught before ``core.errors`` existed.
    """

    code = "model_unavailable"
    default_message = "The analysis model is not available."


@dataclass(frozen=True)
class ModelInfo:
    """Identity of the loaded model, stamped on every stored result.

    Attributes:
        name: Architecture name.
        version: Model version.
        sha256: SHA-256 of the checkpoint file.
        thresholds: Per-finding thresholds for patients of unknown age.
        device: Where the model runs.
        population_thresholds: ``{population: {finding: threshold}}`` for every population.
    """

    name: str
    version: str
    sha256: str
    thresholds: dict[str, float]
    device: str
    population_thresholds: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    """Per-finding probabilities of one scan.

    Attributes:
        probabilities: Calibrated probability per finding (kept even when abstaining).
        abstained: True when the input is not a frontal chest radiograph the model can read.
        abstain_reason: One sentence for the user when ``abstained``.
        ood_score: Mahalanobis distance of the scan's features (higher is stranger).
        population: Whose temperatures and thresholds were applied (``models.populations``).
        thresholds: The per-finding thresholds that apply to these probabilities.
        log_odds: Per finding, the calibrated log-odds ``logit / temperature``: the same
            information as the probability, without its saturation near 0 and 1, so a
            timeline of it can move where the probability sits at 0.99.
    """

    probabilities: dict[str, float]
    abstained: bool
    abstain_reason: str | None
    ood_score: float
    population: str = UNKNOWN
    thresholds: dict[str, float] = field(default_factory=dict)
    log_odds: dict[str, float] = field(default_factory=dict)


def select_device() -> torch.device:
    """CUDA when present, then Apple MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def load_count() -> int:
    """How many times this process has built the model (the UI cache keeps it at one)."""
    return _load_count


def _rule_based_reason(scan: DecodedScan) -> str | None:
    refusal = not_a_chest_radiograph(scan)
    if refusal is not None:
        return f"{refusal} The model cannot read it."
    meta = scan.metadata
    if meta.view_position and meta.view_position.upper() in _LATERAL_VIEWS:
        return "This is a side (lateral) view; the model only reads front views of the chest."
    return None


class Classifier:
    """A loaded checkpoint ready for batched inference on one device."""

    def __init__(
        self,
        checkpoint: LoadedCheckpoint,
        device: torch.device,
        validity: dict[tuple[str, str], FindingValidity] | None = None,
        noise_bands: dict[str, float] | None = None,
    ) -> None:
        self._checkpoint = checkpoint
        self._device = device
        self._model = checkpoint.model.to(device).eval()
        self._validity = validity or {}
        self._noise_bands = noise_bands or {}
        self.info = ModelInfo(
            name=ARCHITECTURE_NAME,
            version=checkpoint.version,
            sha256=checkpoint.sha256,
            thresholds=dict(checkpoint.thresholds),
            device=str(device),
            population_thresholds={
                p: dict(c.thresholds) for p, c in checkpoint.calibration.items()
            },
        )

    def thresholds_for(self, age: int | None) -> dict[str, float]:
        """Per-finding thresholds that apply to a patient of this age (None: unknown)."""
        return self.info.population_thresholds[population_for_age(age)]

    def noise_band(self, finding: str) -> float | None:
        """Change of a finding's log-odds that the model's own noise stays within (95%).

        Measured by ``python -m models.noise`` for this exact checkpoint (same film
        re-encoded, cropped, re-exposed); None when not measured. A larger change between two
        films of the same projection is beyond noise (``models.trajectory.change_beyond_noise``).
        """
        return self._noise_bands.get(finding)

    def validity(self, finding: str, age: int | None) -> FindingValidity:
        """Whether ``finding`` was shown to work for a patient of this age (None: unknown).

        Args:
            finding: One of ``core.findings.FINDINGS``.
            age: Age in years, or None.

        Returns:
            The verdict and its reason, from the test evaluation of this exact checkpoint
            (``models/metrics.json``); never valid when that evaluation is missing.

        Raises:
            ValueError: ``finding`` is unknown.
        """
        if finding not in FINDINGS:
            raise ValueError(f"unknown finding {finding!r}")
        population = population_for_age(age)
        return self._validity.get((finding, population)) or not_evaluated(finding, population)

    @property
    def input_size(self) -> int:
        """Side of the square network input, in pixels."""
        return self._checkpoint.input_size

    @property
    def ood_threshold(self) -> float:
        """Feature distance above which a scan is refused as out of distribution."""
        return self._checkpoint.ood.threshold

    def _inputs(self, scans: list[DecodedScan]) -> torch.Tensor:
        return torch.stack([preprocess(scan.pixels, self.input_size) for scan in scans]).to(
            self._device
        )

    def predict(
        self,
        scans: list[DecodedScan],
        batch_size: int = 32,
        *,
        ages: Sequence[int | None] | None = None,
        populations: Sequence[str] | None = None,
    ) -> list[Prediction]:
        """Classify decoded scans.

        Args:
            scans: Output of ``core.imaging.decode_scan``.
            batch_size: Images per forward pass.
            ages: The patient's age in years per scan where known (None: unknown); picks the
                child or adult calibration.
            populations: Instead of ``ages``, the population per scan where the caller knows
                it otherwise (the evaluation knows each test set's population by its source).

        Returns:
            One :class:`Prediction` per scan, in order.

        Raises:
            ValueError: ``ages`` and ``populations`` are both given, one of them does not have
                one entry per scan, or a population is unknown.
        """
        chosen = self._populations(len(scans), ages, populations)
        predictions: list[Prediction] = []
        for start in range(0, len(scans), batch_size):
            batch = scans[start : start + batch_size]
            with torch.inference_mode():
                inputs = self._inputs(batch)
                features = self._model.embed(inputs)
                logits = self._model.head(features).double().cpu().numpy()
                # Standardisation is linear, so -input is exactly the negative's input.
                inverted_features = self._model.embed(-inputs)
            feature_rows = features.double().cpu().numpy()
            scores = self._checkpoint.ood.score(feature_rows)
            inverted = self._checkpoint.ood.looks_inverted(
                feature_rows, inverted_features.double().cpu().numpy()
            )
            for scan, row, score, negative, population in zip(
                batch, logits, scores, inverted, chosen[start : start + batch_size], strict=True
            ):
                reason = _rule_based_reason(scan)
                if reason is None and negative:
                    reason = (
                        "This image looks like a negative (black and white are swapped), so the "
                        "model cannot read it; please upload the original X-ray file."
                    )
                if reason is None and score > self.ood_threshold:
                    reason = (
                        "This image does not look like the front-view chest X-rays the model "
                        "was trained on, so its result would not be reliable."
                    )
                calibration = self._checkpoint.calibration[population]
                log_odds = {
                    f: float(x) / calibration.temperatures[f]
                    for f, x in zip(FINDINGS, row, strict=True)
                }
                predictions.append(
                    Prediction(
                        probabilities={f: float(1 / (1 + np.exp(-z))) for f, z in log_odds.items()},
                        abstained=reason is not None,
                        abstain_reason=reason,
                        ood_score=float(score),
                        population=population,
                        thresholds=dict(calibration.thresholds),
                        log_odds=log_odds,
                    )
                )
        return predictions

    @staticmethod
    def _populations(
        count: int, ages: Sequence[int | None] | None, populations: Sequence[str] | None
    ) -> list[str]:
        if ages is not None and populations is not None:
            raise ValueError("give ages or populations, not both")
        if populations is not None:
            given = list(populations)
        elif ages is not None:
            given = [population_for_age(age) for age in ages]
        else:
            return [UNKNOWN] * count
        if len(given) != count:
            raise ValueError(f"expected one age or population per scan ({count}), got {len(given)}")
        unknown = set(given) - set(POPULATIONS)
        if unknown:
            raise ValueError(f"unknown populations {sorted(unknown)}")
        return list(given)

    def heatmap(self, scan: DecodedScan, finding: str) -> np.ndarray:
        """Grad-CAM map of where the image drove the given finding's score.

        Args:
            scan: A decoded scan.
            finding: One of ``core.findings.FINDINGS``.

        Returns:
            Float32 array of the scan's shape (H, W) in [0, 1] (all zeros when no
            region raised the score).

        Raises:
            ValueError: ``finding`` is unknown.
        """
        if finding not in FINDINGS:
            raise ValueError(f"unknown finding {finding!r}")
        with torch.enable_grad():
            feature_map = (
                self._model.feature_map(self._inputs([scan])).detach().requires_grad_(True)
            )
            logit = self._model.head(feature_map.mean(dim=(2, 3)))[0, FINDINGS.index(finding)]
            (gradient,) = torch.autograd.grad(logit, feature_map)
        weights = gradient.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * feature_map).sum(dim=1, keepdim=True)).detach()
        cam = F.interpolate(cam, size=scan.pixels.shape, mode="bilinear", align_corners=False)[0, 0]
        peak = cam.max()
        cam = cam / peak if peak > 0 else cam
        return cam.cpu().numpy().astype(np.float32)


def load_classifier(
    path: Path | None = None,
    metrics_path: Path = METRICS_PATH,
    noise_path: Path = NOISE_PATH,
    *,
    threads: int | None = None,
) -> Classifier:
    """Build the classifier from its checkpoint on the best available device.

    Args:
        path: Checkpoint file; defaults to ``Settings.checkpoint_path``.
        metrics_path: Evaluation report with the validity table; it is used only when it
            measured this exact checkpoint (same SHA-256).
        noise_path: Noise measurement (``models.noise``), used under the same condition.
        threads: CPU threads for torch's operations, for the whole process (the app server
            passes ``Settings.inference_threads``); ``None`` keeps torch's default.

    Returns:
        The ready :class:`Classifier`.

    Raises:
        ModelUnavailable: The checkpoint is missing or damaged.
    """
    global _load_count
    path = load_settings().checkpoint_path if path is None else Path(path)
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as exc:
        raise ModelUnavailable(f"The analysis model is not available: {exc}") from exc
    device = select_device()
    if threads is not None:
        torch.set_num_threads(threads)
    _load_count += 1
    logger.info(
        "loaded %s %s (%s) on %s",
        ARCHITECTURE_NAME,
        checkpoint.version,
        checkpoint.sha256[:12],
        device,
    )
    return Classifier(
        checkpoint,
        device,
        load_validity(metrics_path, checkpoint.sha256),
        load_noise_bands(noise_path, checkpoint.sha256),
    )
