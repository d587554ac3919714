"""Out-of-distribution score: Mahalanobis distance of the network's pooled features.

Fitted on training radiographs; the abstention threshold is a high percentile of the
scores of validation radiographs, so a known share of real chest films is refused.

The same distance also recognises negatives (black and white swapped, e.g. a
MONOCHROME1 image exported without inversion): a negative moves *closer* to the
training radiographs when inverted back, while a real radiograph moves away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Share of validation radiographs allowed to be refused (the false-abstain budget).
FALSE_ABSTAIN_BUDGET = 0.005
#: Share of validation radiographs allowed to be refused as negatives.
INVERSION_BUDGET = 0.001
#: Shrinkage towards the scaled identity keeps the 256x256 covariance invertible.
_SHRINKAGE = 0.05


@dataclass(frozen=True)
class FeatureGaussian:
    """A Gaussian over feature vectors with a calibrated distance threshold.

    Attributes:
        mean: Feature mean (D,).
        precision: Inverse of the shrunk covariance (D, D).
        threshold: Distances above this are out of distribution.
        inversion_margin: An image is a negative when its distance exceeds its
            inverted copy's distance by more than this (infinite: check disabled).
    """

    mean: np.ndarray
    precision: np.ndarray
    threshold: float
    inversion_margin: float = math.inf

    def score(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distances of feature rows (N, D) -> (N,)."""
        centred = features - self.mean
        return np.sqrt(np.einsum("nd,de,ne->n", centred, self.precision, centred))

    def looks_inverted(self, features: np.ndarray, inverted_features: np.ndarray) -> np.ndarray:
        """Which images are negatives, from their and their inverted copies' features.

        Shapes: (N, D) features in, (N,) flags out.
        """
        return self.score(features) - self.score(inverted_features) > self.inversion_margin

    def to_state(self) -> dict:
        """Plain-array form stored in the checkpoint."""
        return {
            "mean": self.mean,
            "precision": self.precision,
            "threshold": self.threshold,
            "inversion_margin": self.inversion_margin,
        }

    @classmethod
    def from_state(cls, state: dict) -> FeatureGaussian:
        """Inverse of :meth:`to_state`."""
        return cls(
            mean=np.asarray(state["mean"], dtype=np.float64),
            precision=np.asarray(state["precision"], dtype=np.float64),
            threshold=float(state["threshold"]),
            inversion_margin=float(state.get("inversion_margin", math.inf)),
        )


def fit_feature_gaussian(
    train_features: np.ndarray,
    validation_features: np.ndarray,
    inverted_validation_features: np.ndarray | None = None,
) -> FeatureGaussian:
    """Fit the Gaussian on training features and calibrate its thresholds on validation.

    Args:
        train_features: Features of training radiographs (N, D).
        validation_features: Features of held-out radiographs (M, D).
        inverted_validation_features: Features of the same held-out radiographs with
            black and white swapped (M, D); without them the negative check is disabled.

    Returns:
        The fitted :class:`FeatureGaussian`.
    """
    train = np.asarray(train_features, dtype=np.float64)
    mean = train.mean(axis=0)
    covariance = np.cov(train, rowvar=False)
    scale = np.trace(covariance) / covariance.shape[0]
    covariance = (1 - _SHRINKAGE) * covariance + _SHRINKAGE * scale * np.eye(covariance.shape[0])
    provisional = FeatureGaussian(mean, np.linalg.inv(covariance), math.inf)
    distances = provisional.score(np.asarray(validation_features, dtype=np.float64))
    threshold = float(np.quantile(distances, 1 - FALSE_ABSTAIN_BUDGET))
    margin = math.inf
    if inverted_validation_features is not None:
        gaps = distances - provisional.score(
            np.asarray(inverted_validation_features, dtype=np.float64)
        )
        margin = float(np.quantile(gaps, 1 - INVERSION_BUDGET))
    return FeatureGaussian(mean, provisional.precision, threshold, margin)
