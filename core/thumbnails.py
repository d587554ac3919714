"""Small previews of a scan: a PNG thumbnail, and the same as a ``data:`` URL for tables."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from core.imaging import to_uint8

#: Longest side of a thumbnail, in pixels.
THUMBNAIL_SIDE = 96


def thumbnail_png(pixels: np.ndarray, side: int = THUMBNAIL_SIDE) -> bytes:
    """A small grayscale PNG of an image, aspect ratio kept.

    Args:
        pixels: Image, (H, W) float in [0, 1].
        side: Longest side of the thumbnail.

    Returns:
        PNG bytes.
    """
    image = Image.fromarray(to_uint8(pixels), mode="L")
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def png_data_url(png: bytes) -> str:
    """PNG bytes as a ``data:image/png;base64,...`` URL (a table's image column, a chart)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def thumbnail_url(pixels: np.ndarray, side: int = THUMBNAIL_SIDE) -> str:
    """The thumbnail as a ``data:`` URL (for an image column of a table)."""
    return png_data_url(thumbnail_png(pixels, side))
