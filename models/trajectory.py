"""What a timeline plots, and how large a change of it is beyond the model's own noise.

Probabilities saturate: on many adult films a finding's probability sits within 0.02 of 0
or 1, where a real change moves it by less than a plot shows. The calibrated log-odds
(``Prediction.log_odds``, or ``core.findings.log_odds`` of a stored probability) carry the same
information on a scale that does not saturate, so the timeline plots them with the
probability in the hover. ``python -m models.noise`` measures how much they move when the
same film is re-encoded, slightly cropped or re-exposed (``models/noise.json``);
``Classifier.noise_band`` serves that band for the checkpoint it measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.reports import report_for_checkpoint

MODELS_DIR = Path(__file__).resolve().parent
NOISE_PATH = MODELS_DIR / "noise.json"
#: Probabilities closer than this to 0 or 1 count as saturated.
SATURATION_MARGIN = 0.02


def change_beyond_noise(before: float, after: float, band: float) -> bool:
    """Whether the log-odds moved by more than the model's own noise between two films.

    Args:
        before: Log-odds on the earlier film.
        after: Log-odds on the later film of the same projection.
        band: The finding's noise band (``Classifier.noise_band``).

    Returns:
        True when ``|after - before| > band``.
    """
    return abs(after - before) > band


def saturated_share(probabilities: np.ndarray) -> float:
    """Share of probabilities within :data:`SATURATION_MARGIN` of 0 or 1."""
    probabilities = np.asarray(probabilities)
    return float(
        np.mean((probabilities < SATURATION_MARGIN) | (probabilities > 1 - SATURATION_MARGIN))
    )


def load_noise_bands(path: Path, sha256: str) -> dict[str, float]:
    """Per-finding noise band (log-odds) measured for the checkpoint with ``sha256``.

    Args:
        path: ``models/noise.json``.
        sha256: SHA-256 of the loaded checkpoint.

    Returns:
        ``{finding: band}``; empty when the file is missing or measured another checkpoint.
    """
    report = report_for_checkpoint(path, sha256)
    if report is None or "noise" not in report:
        return {}
    return {finding: float(values["band"]) for finding, values in report["noise"].items()}
