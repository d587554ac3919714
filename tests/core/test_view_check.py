"""The automatic view check on real frontal films and on clearly synthetic side views."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.imaging import decode_scan
from core.view_check import (
    LOOKS_FRONTAL_WARNING,
    LOOKS_LATERAL_WARNING,
    central_band_contrast,
    check_view,
)
from core.views import View

FRONTAL = ["00000001_000.png", "00027426_000.png", "16747_3_1.jpg"]


def _synthetic_lateral(pixels: np.ndarray) -> np.ndarray:
    """SYNTHETIC stand-in for a side view: one half of a frontal film stretched to full width.

    It moves a lung field to the middle and the spine to one edge, as on a lateral film; it is
    not a real lateral (the shared data holds none).
    """
    height, width = pixels.shape
    half = pixels[:, : width // 2]
    return np.repeat(half, 2, axis=1)[:, :width]


def test_real_frontal_films_draw_no_warning_as_frontal(samples_dir: Path) -> None:
    for name in FRONTAL:
        pixels = decode_scan((samples_dir / name).read_bytes()).pixels
        check = check_view(pixels, View.PA)
        assert check.warning is None, name
        assert check.looks_frontal, name


def test_a_real_frontal_film_marked_lateral_is_questioned(samples_dir: Path) -> None:
    pixels = decode_scan((samples_dir / FRONTAL[0]).read_bytes()).pixels
    assert check_view(pixels, View.LATERAL).warning == LOOKS_FRONTAL_WARNING
    assert check_view(pixels, View.UNKNOWN).warning is None


def test_a_synthetic_side_view_marked_frontal_is_questioned(samples_dir: Path) -> None:
    pixels = decode_scan((samples_dir / FRONTAL[0]).read_bytes()).pixels
    lateral = _synthetic_lateral(pixels)
    assert check_view(lateral, View.AP).warning == LOOKS_LATERAL_WARNING
    assert check_view(lateral, View.LATERAL).warning is None


def test_a_flat_image_has_no_contrast() -> None:
    assert central_band_contrast(np.full((100, 80), 0.4, dtype=np.float32)) == 0.0
