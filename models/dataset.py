"""Load labelled radiographs through the same decode and preprocessing path as uploads."""

from __future__ import annotations

import torch
from tqdm import tqdm

from core.imaging import decode_scan
from models.data import Example
from models.preprocess import preprocess


def load_image_tensor(path, size: int) -> torch.Tensor:
    """Decode one file exactly as an upload is decoded and preprocess it.

    Args:
        path: Image file path.
        size: Network input side.

    Returns:
        Tensor (1, size, size).

    Raises:
        core.imaging.ScanError: The file cannot be decoded.
    """
    with open(path, "rb") as handle:
        scan = decode_scan(handle.read(), str(path))
    return preprocess(scan.pixels, size)


def load_tensors(examples: list[Example], size: int, description: str) -> torch.Tensor:
    """Stack the preprocessed images of ``examples`` into one (N, 1, size, size) tensor."""
    images = torch.empty((len(examples), 1, size, size), dtype=torch.float32)
    for index, example in enumerate(tqdm(examples, desc=description, unit="img")):
        images[index] = load_image_tensor(example.path, size)
    return images
