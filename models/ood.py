"""Out-of-distribution score: Mahalanobis distance of the network's pooled features.

Fitted on training radiographs; the abstention threshold is a high percentile of the
scores of validation radiographs, so a known share of real chest films is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Share of validation radiographs allowed to be refused (the false-abstain budget).
FALSE_ABSTAIN_BUDGET = 0.005
#: Shrinkage towards the scaled identity keeps the 256x256 covariance invertible.
_SHRINKAGE = 0.05


@dataclass(frozen=True)
class FeatureGaussian:
    """A Gaussian over feature vectors with a calibrated distance threshold.

    Attributes:
        mean: Feature mean (D,).
        precision: Inverse of the shrunk covariance (D, D).
        threshold: Distances above this are out of distribution.
    """

    mean: np.ndarray
    precision: np.ndarray
    threshold: float

    def score(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distances of feature rows (N, D) -> (N,)."""
        centred = features - self.mean
        return np.sqrt(np.einsum("nd,de,ne->n", centred, self.precision, centred))

    def to_state(self) -> dict:
        """Plain-array form stored in the checkpoint."""
        return {"mean": self.mean, "precision": self.precision, "threshold": self.threshold}

    @classmethod
    def from_state(cls, state: dict) -> "FeatureGaussian":
        """Inverse of :meth:`to_state`."""
        return cls(
            mean=np.asarray(state["mean"], dtype=np.float64),
            precision=np.asarray(state["precision"], dtype=np.float64),
            threshold=float(state["threshold"]),
        )


def fit_feature_gaussian(train_features: np.ndarray, validation_features: np.ndarray) -> FeatureGaussian:
    """Fit the Gaussian on training features and calibrate its threshold on validation.

    Args:
        train_features: Features of training radiographs (N, D).
        validation_features: Features of held-out radiographs (M, D).

    Returns:
        The fitted :class:`FeatureGaussian`.
    """
    train = np.asarray(train_features, dtype=np.float64)
    mean = train.mean(axis=0)
    covariance = np.cov(train, rowvar=False)
    scale = np.trace(covariance) / covariance.shape[0]
    covariance = (1 - _SHRINKAGE) * covariance + _SHRINKAGE * scale * np.eye(covariance.shape[0])
    provisional = FeatureGaussian(mean, np.linalg.inv(covariance), float("inf"))
    distances = provisional.score(np.asarray(validation_features, dtype=np.float64))
    threshold = float(np.quantile(distances, 1 - FALSE_ABSTAIN_BUDGET))
    return FeatureGaussian(mean, provisional.precision, threshold)
