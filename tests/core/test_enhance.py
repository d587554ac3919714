"""Tests for core.enhance: each step does what it claims, deterministically, within range."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy import ndimage

from core.enhance import (
    DENOISE_METHODS,
    ORIGINAL_CAPTION,
    PARAMETER_RANGES,
    SAVED_CAPTION,
    EnhanceSettings,
    enhance,
    enhance_as_saved,
)

#: Every step off: the pipeline must then return its (clipped) input.
IDENTITY = EnhanceSettings(clahe_clip_limit=0.0, unsharp_amount=0.0)


def _phantom(size: int = 128) -> np.ndarray:
    """Piecewise-constant low-contrast image: a gradient of squares between 0.4 and 0.6."""
    rows, cols = np.indices((size, size))
    blocks = ((rows // 16) + (cols // 16)) % 2
    return (0.4 + 0.1 * blocks + 0.1 * cols / size).astype(np.float32)


def _noisy(clean: np.ndarray, sigma: float = 0.08, seed: int = 1) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0.0, sigma, clean.shape)
    return np.clip(clean + noise, 0.0, 1.0).astype(np.float32)


def _local_contrast(image: np.ndarray, size: int = 15) -> float:
    """Mean standard deviation within ``size`` x ``size`` neighbourhoods."""
    mean = ndimage.uniform_filter(image.astype(np.float64), size)
    mean_sq = ndimage.uniform_filter(image.astype(np.float64) ** 2, size)
    return float(np.sqrt(np.clip(mean_sq - mean**2, 0, None)).mean())


def _high_frequency_energy(image: np.ndarray) -> float:
    return float(np.mean(ndimage.laplace(image.astype(np.float64)) ** 2))


def test_all_steps_off_is_identity() -> None:
    image = _noisy(_phantom())
    np.testing.assert_array_equal(enhance(image, IDENTITY), image)


def test_window_maps_its_range_to_full_scale() -> None:
    image = np.array([[0.2, 0.25, 0.5, 0.75, 0.9]] * 2, dtype=np.float32)
    out = enhance(image, dataclasses.replace(IDENTITY, window_center=0.5, window_width=0.5))
    np.testing.assert_allclose(out[0], [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)


def test_clahe_raises_local_contrast() -> None:
    image = _phantom()
    out = enhance(image, dataclasses.replace(IDENTITY, clahe_clip_limit=0.02))
    assert _local_contrast(out) > 1.5 * _local_contrast(image)


def test_clahe_tiles_change_the_result() -> None:
    image = _noisy(_phantom(), seed=4)
    coarse = enhance(image, dataclasses.replace(IDENTITY, clahe_clip_limit=0.02, clahe_tiles=2))
    fine = enhance(image, dataclasses.replace(IDENTITY, clahe_clip_limit=0.02, clahe_tiles=16))
    assert not np.allclose(coarse, fine)


def test_flat_image_survives_clahe() -> None:
    flat = np.full((80, 80), 0.3, dtype=np.float32)
    out = enhance(flat)
    assert np.isfinite(out).all() and out.shape == flat.shape


@pytest.mark.parametrize(("gamma", "brighter"), [(0.5, True), (2.0, False)])
def test_gamma_moves_the_mean(gamma: float, brighter: bool) -> None:
    image = _phantom()
    out = enhance(image, dataclasses.replace(IDENTITY, gamma=gamma))
    assert bool(out.mean() > image.mean()) is brighter
    np.testing.assert_allclose(out, image**gamma, rtol=1e-5)


def test_unsharp_mask_raises_high_frequency_energy() -> None:
    image = ndimage.gaussian_filter(_phantom(), 2.0)
    out = enhance(image, dataclasses.replace(IDENTITY, unsharp_amount=1.5, unsharp_radius=2.0))
    assert _high_frequency_energy(out) > 2 * _high_frequency_energy(image)


@pytest.mark.parametrize("method", ["tv", "nl_means"])
def test_denoising_lowers_noise(method: str) -> None:
    clean = _phantom()
    noisy = _noisy(clean)
    out = enhance(noisy, dataclasses.replace(IDENTITY, denoise=method, denoise_strength=0.08))
    assert np.std(out - clean) < 0.6 * np.std(noisy - clean)


def test_every_method_is_deterministic_and_keeps_shape_and_range() -> None:
    image = _noisy(_phantom(96)[:, :70], seed=2)  # non-square on purpose
    for method in DENOISE_METHODS:
        settings = EnhanceSettings(
            window_center=0.45,
            window_width=0.6,
            clahe_clip_limit=0.03,
            gamma=0.8,
            unsharp_amount=2.0,
            denoise=method,
        )
        first, second = enhance(image, settings), enhance(image, settings)
        np.testing.assert_array_equal(first, second)
        assert first.shape == image.shape and first.dtype == np.float32
        assert first.min() >= 0.0 and first.max() <= 1.0


def test_input_is_not_modified_and_out_of_range_input_is_clipped() -> None:
    image = np.linspace(-0.5, 1.5, 64 * 64, dtype=np.float32).reshape(64, 64)
    before = image.copy()
    out = enhance(image, IDENTITY)
    np.testing.assert_array_equal(image, before)
    np.testing.assert_array_equal(out, np.clip(before, 0, 1))


def test_default_settings_change_the_image() -> None:
    image = _noisy(_phantom(), seed=3)
    out = enhance(image)
    assert out.shape == image.shape and not np.allclose(out, image)


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((4, 4, 3)), np.zeros((0, 5)), np.array([[0.1, np.nan], [0.2, 0.3]])],
    ids=["3-d", "empty", "nan"],
)
def test_bad_pixels_are_refused(pixels: np.ndarray) -> None:
    with pytest.raises(ValueError):
        enhance(pixels)


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("gamma", 0.0, "gamma must be between 0.2 and 5"),
        ("gamma", float("nan"), "gamma must be between"),
        ("window_width", 0.0, "window_width must be between"),
        ("window_center", 1.5, "window_center must be between"),
        ("clahe_clip_limit", -0.01, "clahe_clip_limit must be between"),
        ("clahe_tiles", 1, "clahe_tiles must be between"),
        ("clahe_tiles", 4.5, "clahe_tiles must be a whole number"),
        ("unsharp_amount", 10.0, "unsharp_amount must be between"),
        ("unsharp_radius", "2", "unsharp_radius must be a number"),
        ("denoise_strength", True, "denoise_strength must be a number"),
        ("denoise", "median", "denoise must be one of none, tv, nl_means"),
    ],
)
def test_invalid_settings_raise_a_clear_error(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnhanceSettings(**{field: value})


def test_range_bounds_are_accepted() -> None:
    for field, (low, high) in PARAMETER_RANGES.items():
        assert getattr(EnhanceSettings(**{field: low}), field) == low
        assert getattr(EnhanceSettings(**{field: high}), field) == high


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        EnhanceSettings().gamma = 2.0  # type: ignore[misc]


def test_dict_round_trip_through_json() -> None:
    settings = EnhanceSettings(gamma=0.7, clahe_tiles=4, denoise="tv", denoise_strength=0.1)
    restored = EnhanceSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert restored == settings
    assert isinstance(restored.clahe_tiles, int)


def test_from_dict_fills_defaults_and_ignores_unknown_keys() -> None:
    restored = EnhanceSettings.from_dict({"gamma": 1.5, "retired_option": 3})
    assert restored == EnhanceSettings(gamma=1.5)


def test_from_dict_still_validates() -> None:
    with pytest.raises(ValueError, match="gamma"):
        EnhanceSettings.from_dict({"gamma": 99})


def test_a_stored_scan_is_shown_with_the_enhancement_saved_with_it() -> None:
    pixels = _phantom()
    saved = EnhanceSettings(gamma=1.8, unsharp_amount=0.0)
    view = enhance_as_saved(pixels, saved.to_dict())
    assert view.as_saved and view.caption == SAVED_CAPTION
    np.testing.assert_array_equal(view.pixels, enhance(pixels, saved))
    assert not np.allclose(view.pixels, enhance(pixels))


def test_missing_stored_settings_mean_the_defaults() -> None:
    pixels = _phantom()
    for stored in (None, {}):
        view = enhance_as_saved(pixels, stored)
        assert view.as_saved
        np.testing.assert_array_equal(view.pixels, enhance(pixels))


def test_settings_that_no_longer_validate_show_the_original_and_say_so() -> None:
    pixels = _phantom()
    pixels[0, 0] = 1.7  # decoded pixels are clipped to [0, 1] for display, as enhance() does
    view = enhance_as_saved(pixels, {"gamma": 99, "window_width": 0.5})
    assert not view.as_saved and view.caption == ORIGINAL_CAPTION
    assert view.pixels.dtype == np.float32
    np.testing.assert_array_equal(view.pixels, np.clip(pixels, 0, 1))
    assert not np.allclose(view.pixels, enhance(pixels))
