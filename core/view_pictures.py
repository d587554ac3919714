"""Schematic pictures of a frontal and a side (lateral) chest film, drawn in code.

Shown above the upload table so that a patient can tell which view a film is. They are
drawings, not radiographs: dark lungs on a light body, as on a film.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

#: Side of each picture, in pixels.
PICTURE_SIDE = 160

_BACKGROUND, _BODY, _LUNG, _BONE = 10, 150, 45, 235


def _canvas(side: int) -> tuple[Image.Image, ImageDraw.ImageDraw, float]:
    # Shapes are placed on a 100 x 100 grid and scaled, so every side draws the same picture.
    image = Image.new("L", (side, side), _BACKGROUND)
    return image, ImageDraw.Draw(image), side / 100


def frontal_picture(side: int = PICTURE_SIDE) -> np.ndarray:
    """A frontal film: two lungs side by side, spine in the middle, heart lower left of it.

    Args:
        side: Width and height of the picture.

    Returns:
        uint8 (side, side) grayscale image.
    """
    image, draw, s = _canvas(side)
    draw.ellipse([12 * s, 8 * s, 88 * s, 98 * s], fill=_BODY)
    draw.ellipse([20 * s, 18 * s, 46 * s, 84 * s], fill=_LUNG)  # the patient's right lung
    draw.ellipse([54 * s, 18 * s, 80 * s, 84 * s], fill=_LUNG)  # left lung
    draw.rectangle([47 * s, 10 * s, 53 * s, 96 * s], fill=_BONE)  # spine
    draw.ellipse([46 * s, 52 * s, 70 * s, 80 * s], fill=_BODY + 30)  # heart
    for y in range(24, 80, 10):  # ribs
        draw.arc([18 * s, y * s, 48 * s, (y + 14) * s], 180, 300, fill=_BONE)
        draw.arc([52 * s, y * s, 82 * s, (y + 14) * s], 240, 360, fill=_BONE)
    return np.asarray(image)


def lateral_picture(side: int = PICTURE_SIDE) -> np.ndarray:
    """A side film: one overlapping lung shape, spine at the back (right), breastbone in front.

    Args:
        side: Width and height of the picture.

    Returns:
        uint8 (side, side) grayscale image, like `frontal_picture`.
    """
    image, draw, s = _canvas(side)
    draw.ellipse([22 * s, 8 * s, 82 * s, 98 * s], fill=_BODY)
    draw.ellipse([32 * s, 16 * s, 72 * s, 86 * s], fill=_LUNG)  # both lungs, overlapping
    draw.ellipse([34 * s, 50 * s, 56 * s, 80 * s], fill=_BODY + 30)  # heart, to the front
    for y in range(12, 94, 9):  # vertebrae at the back
        draw.rectangle([74 * s, y * s, 80 * s, (y + 6) * s], fill=_BONE)
    draw.rectangle([24 * s, 26 * s, 27 * s, 70 * s], fill=_BONE)  # breastbone in front
    return np.asarray(image)
