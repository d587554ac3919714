"""An automatic check that a film looks like the view it was given (frontal or side).

A frontal chest film (PA or AP) shows a bright vertical band in the middle, the spine and
mediastinum, between two darker lung fields. On a side (lateral) film the middle of the image
is the superimposed lungs and heart, and the bright spine lies at one edge. The check measures
that contrast on the middle half of the rows: the mean brightness of the central columns minus
that of the two lung columns, divided by the spread of the band.

Measured on the public frontal films of ``../shared/data`` (``benchmarks/bench_view_check.py``,
figures in ``models/MODEL_CARD.md``). No real lateral film exists in that data, so how often it
catches a lateral is unmeasured: the check only warns, it never changes the chosen view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.views import View, is_frontal

#: Side of the square the image is reduced to before measuring (the contrast is coarse).
_SIZE = 64

#: Below this contrast a film chosen as frontal is said not to look frontal. Chosen on the
#: validation splits, where about 2 frontal films in 100 draw the warning (it only warns).
FRONTAL_FLOOR = 0.0

#: At or above this contrast a film chosen as a side view is said to look frontal: the
#: central band is clearly brighter than both lung fields.
FRONTAL_CLEAR = 0.5

LOOKS_LATERAL_WARNING = (
    "This image does not look like a frontal film (no bright band down the middle between "
    "two dark lung fields): check that it is not a side view before trusting its scores."
)
LOOKS_FRONTAL_WARNING = (
    "This image looks like a frontal film (a bright band down the middle between two dark "
    "lung fields), but it is marked as a side view: check the view, since side views are "
    "not scored."
)


@dataclass(frozen=True)
class ViewCheck:
    """What the automatic check found.

    Attributes:
        contrast: Brightness of the central band against the lung fields, in units of the
            band's spread; frontal films are mostly well above 0.
        warning: One sentence when the image looks like the other kind of view, else ``None``.
    """

    contrast: float
    warning: str | None

    @property
    def looks_frontal(self) -> bool:
        """Whether the image clearly shows a frontal film's central band."""
        return self.contrast >= FRONTAL_CLEAR


def central_band_contrast(pixels: np.ndarray) -> float:
    """The central band's brightness against the two lung fields (see the module docstring).

    Args:
        pixels: Decoded image, float (H, W) in ``[0, 1]``, bright meaning dense.

    Returns:
        ``(centre - lung fields) / spread`` over the middle half of the rows; 0 for a flat
        image.
    """
    image = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0)
    small = Image.fromarray(np.clip(image, 0.0, 1.0)).resize(
        (_SIZE, _SIZE), Image.Resampling.BILINEAR
    )
    band = np.asarray(small, dtype=np.float64)[_SIZE // 4 : 3 * _SIZE // 4]
    profile = band.mean(axis=0)
    # Columns as fractions of the width: centre 42-58%, lung fields 16-34% and 66-84%.
    centre = profile[27:37].mean()
    lungs = np.concatenate([profile[10:22], profile[42:54]]).mean()
    spread = band.std()
    if spread < 1e-6:
        return 0.0
    return float((centre - lungs) / spread)


def check_view(pixels: np.ndarray, view: View) -> ViewCheck:
    """Check that an image looks like the view it was given.

    Args:
        pixels: Decoded image, float (H, W) in ``[0, 1]``.
        view: The view chosen by the uploader or read from the file.

    Returns:
        The contrast and, when the image looks like the other kind, one warning sentence.
        An unknown view draws no warning.
    """
    contrast = central_band_contrast(pixels)
    warning = None
    if is_frontal(view) and contrast < FRONTAL_FLOOR:
        warning = LOOKS_LATERAL_WARNING
    elif view is View.LATERAL and contrast >= FRONTAL_CLEAR:
        warning = LOOKS_FRONTAL_WARNING
    return ViewCheck(contrast, warning)
