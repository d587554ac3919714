"""The one preprocessing function shared by training, evaluation and inference."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

#: Side of the square network input. Training images are 224x224 already stretched by
#: the data's publisher; uploads are stretched the same way (aspect ratio not kept).
INPUT_SIZE = 160


def preprocess(pixels: np.ndarray, size: int = INPUT_SIZE) -> torch.Tensor:
    """Turn a decoded radiograph into the network's input tensor.

    Args:
        pixels: Float array (H, W) in [0, 1], as returned by ``core.imaging.decode_scan``.
        size: Output side in pixels.

    Returns:
        Float32 tensor (1, size, size), standardised to zero mean and unit variance
        per image, which removes exposure and contrast differences between detectors.

    Raises:
        ValueError: ``pixels`` is not a 2-D array.
    """
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {pixels.shape}")
    image = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))[None, None]
    image = F.interpolate(
        image, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    std = image.std().clamp_min(1e-3)
    return ((image - image.mean()) / std)[0]
