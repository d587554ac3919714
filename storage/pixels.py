"""How a scan's pixels are kept: at a working resolution, as a lossless 16-bit PNG.

Uploads may be up to 25 megapixels, but nothing in the app needs more than a working
resolution: the classifier reads 224 pixels a side and a screen shows about 2000. So an image
whose long side exceeds :data:`WORKING_LONG_SIDE` is downscaled once, with anti-aliasing,
before it is first stored. Clinicians' marks are stored in the pixel coordinates of the
stored image (:mod:`core.annotations`); since no mark can exist before the image is stored,
every mark refers to the working-resolution image and stays correct. The scale and the
original size are recorded in the scan's metadata.

The ``[0, 1]`` pixels are quantised to 16 bits (half a step is 7.6e-6, below the precision of
any detector; 8-bit sources round-trip exactly) and kept as a 16-bit grayscale PNG, whose
filters and deflate shrink a radiograph several times over raw float32. The encoded bytes
are then sealed like any other blob. The blob's own magic bytes tell the formats apart:
scans stored before this format hold a float32 ``.npy`` array, which is still read as is.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

#: Longest side of a stored image, in pixels: above any screen and far above the model input.
WORKING_LONG_SIDE = 2048

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_NPY_MAGIC = b"\x93NUMPY"
_UINT16_MAX = np.float32(65535)


def to_working_resolution(
    pixels: np.ndarray, metadata: dict[str, Any]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Downscale an image whose long side exceeds :data:`WORKING_LONG_SIDE`.

    Args:
        pixels: Image, (H, W) float32 in ``[0, 1]``.
        metadata: The scan's JSON-safe metadata (``ScanMetadata.to_dict()``).

    Returns:
        The pixels and metadata unchanged when small enough; otherwise the Lanczos-downscaled
        pixels (Pillow widens the filter by the reduction factor, which is the anti-aliasing)
        and a copy of the metadata with the new ``width`` and ``height``, ``pixel_spacing``
        scaled to the new pixels, ``original_width``, ``original_height`` and
        ``storage_scale`` (stored size over original size along the long side).
    """
    height, width = pixels.shape
    long_side = max(height, width)
    if long_side <= WORKING_LONG_SIDE:
        return pixels, metadata
    scale = WORKING_LONG_SIDE / long_side
    new_width = max(1, round(width * scale))
    new_height = max(1, round(height * scale))
    resized = Image.fromarray(pixels).resize((new_width, new_height), Image.Resampling.LANCZOS)
    # Lanczos rings slightly past the input's range at sharp edges.
    small = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    scaled = {
        **metadata,
        "width": new_width,
        "height": new_height,
        "original_width": width,
        "original_height": height,
        "storage_scale": scale,
    }
    spacing = metadata.get("pixel_spacing")
    if spacing:
        scaled["pixel_spacing"] = [spacing[0] * height / new_height, spacing[1] * width / new_width]
    return small, scaled


def quantise(pixels: np.ndarray) -> np.ndarray:
    """The pixels exactly as they will read back once stored (16-bit steps).

    Args:
        pixels: Image, (H, W) float in ``[0, 1]``; values outside are clipped, NaN becomes 0.

    Returns:
        float32 image in ``[0, 1]``; :func:`encode_pixels` stores it without further change.
    """
    return _to_uint16(pixels).astype(np.float32) / _UINT16_MAX


def encode_pixels(pixels: np.ndarray) -> bytes:
    """The bytes of an image as stored: a 16-bit grayscale PNG of the quantised pixels.

    Args:
        pixels: Image, (H, W) float in ``[0, 1]``; values outside are clipped, NaN becomes 0.
    """
    buffer = io.BytesIO()
    Image.fromarray(_to_uint16(pixels)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def decode_pixels(data: bytes) -> np.ndarray:
    """The float32 ``[0, 1]`` image of stored bytes, in the current or the legacy format.

    Args:
        data: Opened (decrypted) blob: a 16-bit PNG, or a float32 ``.npy`` array written
            before the PNG format.

    Raises:
        ValueError: The bytes are in neither format.
    """
    if data.startswith(_PNG_MAGIC):
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            quantised = np.asarray(image, dtype=np.uint16)
        return quantised.astype(np.float32) / _UINT16_MAX
    if data.startswith(_NPY_MAGIC):
        return np.load(io.BytesIO(data), allow_pickle=False)
    raise ValueError("The stored image is in an unknown format.")


def _to_uint16(pixels: np.ndarray) -> np.ndarray:
    values = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0)
    return np.rint(np.clip(values, 0.0, 1.0) * _UINT16_MAX).astype(np.uint16)
