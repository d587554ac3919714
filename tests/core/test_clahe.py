"""Tests for core.clahe: the same output as scikit-image's CLAHE, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage import exposure, filters

from core.clahe import equalize_adapthist
from core.enhance import EnhanceSettings, enhance
from core.imaging import decode_scan

_DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"


def _reference(image: np.ndarray, kernel: tuple[int, int], clip_limit: float) -> np.ndarray:
    return exposure.equalize_adapthist(image, kernel_size=kernel, clip_limit=clip_limit)


@pytest.mark.parametrize("name", [_DICOM, "00000001_000.png", "16747_3_1.jpg"])
@pytest.mark.parametrize(("tiles", "clip_limit"), [(8, 0.01), (5, 0.03), (16, 0.0)])
def test_real_radiographs_match_scikit_image_exactly(
    samples_dir: Path, name: str, tiles: int, clip_limit: float
) -> None:
    pixels = decode_scan((samples_dir / name).read_bytes()).pixels
    height, width = pixels.shape
    kernel = (max(height // tiles, 2), max(width // tiles, 2))
    ours = equalize_adapthist(pixels, kernel, clip_limit)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, _reference(pixels, kernel, clip_limit))


@pytest.mark.parametrize(
    ("shape", "kernel", "clip_limit"),
    [
        ((1, 5), (2, 2), 0.01),
        ((2, 2), (2, 2), 0.01),
        ((3, 50), (2, 6), 0.05),
        ((37, 29), (4, 3), 0.01),
        ((100, 130), (12, 16), 0.02),
        ((300, 200), (2, 2), 0.1),
        ((64, 64), (8, 8), 1.0),
    ],
)
def test_odd_shapes_and_limits_match_scikit_image_exactly(
    shape: tuple[int, int], kernel: tuple[int, int], clip_limit: float
) -> None:
    # Narrow intensity range: the 16- to 14-bit stretch and every redistribution path run.
    image = (0.2 + 0.5 * np.random.default_rng(7).random(shape)).astype(np.float32)
    np.testing.assert_array_equal(
        equalize_adapthist(image, kernel, clip_limit), _reference(image, kernel, clip_limit)
    )


def test_input_is_not_modified() -> None:
    image = np.random.default_rng(3).random((40, 40)).astype(np.float32)
    before = image.copy()
    equalize_adapthist(image, (10, 10), 0.01)
    np.testing.assert_array_equal(image, before)


def test_default_enhancement_is_unchanged_by_the_faster_clahe(samples_dir: Path) -> None:
    """A stored scan looks exactly as it did when saved with scikit-image's CLAHE."""
    pixels = decode_scan((samples_dir / _DICOM).read_bytes()).pixels
    settings = EnhanceSettings()
    kernel = (pixels.shape[0] // settings.clahe_tiles, pixels.shape[1] // settings.clahe_tiles)
    expected = filters.unsharp_mask(
        _reference(pixels, kernel, settings.clahe_clip_limit),
        radius=settings.unsharp_radius,
        amount=settings.unsharp_amount,
        preserve_range=True,
    )
    np.testing.assert_array_equal(enhance(pixels, settings), np.clip(expected, 0.0, 1.0))
