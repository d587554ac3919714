"""Display enhancement of decoded radiographs: window/level, denoising, CLAHE, gamma, sharpening.

The enhancement only changes how a scan is shown; the classifier always sees
the decoded pixels. Every parameter lives in the frozen :class:`EnhanceSettings`
so that what a user chose can be stored beside the scan and reproduced exactly
(the pipeline is deterministic); :func:`enhance_as_saved` is the one rule for showing a
stored scan again.

Order of the steps, and why:

1. window/level: a linear remap, so it picks the intensity range of interest first;
2. denoising: before anything that amplifies noise (CLAHE, sharpening);
3. CLAHE (contrast-limited adaptive histogram equalisation): local contrast;
4. gamma: global brightness curve;
5. unsharp mask: edge emphasis last, so it is not flattened by the steps above.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from skimage import exposure, filters, restoration

from core.clahe import equalize_adapthist

#: Denoising methods: ``none``; ``tv`` (total variation, Chambolle; about 1-2 s
#: for 1024x1024 here); ``nl_means`` (non-local means, slower, keeps fine texture).
DENOISE_METHODS: tuple[str, ...] = ("none", "tv", "nl_means")

#: Inclusive (low, high) bounds of each numeric :class:`EnhanceSettings` field;
#: pages build their sliders from these so UI and validation cannot disagree.
PARAMETER_RANGES: dict[str, tuple[float, float]] = {
    "window_center": (0.0, 1.0),
    "window_width": (0.05, 2.0),
    "clahe_clip_limit": (0.0, 0.1),
    "clahe_tiles": (2, 32),
    "gamma": (0.2, 5.0),
    "unsharp_radius": (0.5, 20.0),
    "unsharp_amount": (0.0, 3.0),
    "denoise_strength": (0.001, 0.5),
}

_INTEGER_FIELDS = frozenset({"clahe_tiles"})

#: Non-local means patch geometry: skimage's documented good choice for images of this size.
_NL_MEANS_PATCH_SIZE = 5
_NL_MEANS_PATCH_DISTANCE = 6

#: Caption of a stored scan shown with the enhancement it was saved with.
SAVED_CAPTION = "Enhanced with the settings saved with this scan."

#: Caption of a stored scan whose saved enhancement cannot be reproduced.
ORIGINAL_CAPTION = (
    "The enhancement saved with this scan could not be reproduced, so the original image is shown."
)


def _checked_number(name: str, value: Any, low: float, high: float) -> float:
    """Return ``value`` as float after checking it is a finite number within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value!r}.")
    if name in _INTEGER_FIELDS and not number.is_integer():
        raise ValueError(f"{name} must be a whole number, got {value!r}.")
    return number


@dataclass(frozen=True)
class EnhanceSettings:
    """Parameters of :func:`enhance`; the defaults are a mild, fast enhancement.

    Attributes:
        window_center: Centre of the displayed intensity window, in ``[0, 1]``.
        window_width: Width of the window; 1 with centre 0.5 leaves intensities
            unchanged, smaller widths raise contrast, larger ones lower it.
        clahe_clip_limit: CLAHE contrast limit (skimage ``clip_limit``); 0 turns
            CLAHE off.
        clahe_tiles: CLAHE tiles per side: the neighbourhood is the image size
            divided by this (8 is skimage's default).
        gamma: Output = input ** gamma; below 1 brightens, above 1 darkens.
        unsharp_radius: Gaussian sigma, in pixels, of the unsharp mask.
        unsharp_amount: Strength of the unsharp mask; 0 turns it off.
        denoise: One of :data:`DENOISE_METHODS`; ``none`` by default because
            the others take seconds on a full-size radiograph.
        denoise_strength: Total-variation weight, or non-local-means filter
            strength ``h``, in intensity units.

    Raises:
        ValueError: On construction, when a value is not a finite number in its
            :data:`PARAMETER_RANGES` range or ``denoise`` is unknown.
    """

    window_center: float = 0.5
    window_width: float = 1.0
    clahe_clip_limit: float = 0.01
    clahe_tiles: int = 8
    gamma: float = 1.0
    unsharp_radius: float = 2.0
    unsharp_amount: float = 0.5
    denoise: str = "none"
    denoise_strength: float = 0.05

    def __post_init__(self) -> None:
        for name, (low, high) in PARAMETER_RANGES.items():
            value = _checked_number(name, getattr(self, name), low, high)
            object.__setattr__(self, name, int(value) if name in _INTEGER_FIELDS else value)
        if self.denoise not in DENOISE_METHODS:
            raise ValueError(
                f"denoise must be one of {', '.join(DENOISE_METHODS)}, got {self.denoise!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-safe dict (stored beside each scan)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> EnhanceSettings:
        """Rebuild settings from :meth:`to_dict` output.

        Missing keys take their defaults and unknown keys are ignored, so
        settings stored by an older or newer version still load.

        Args:
            values: Field names to values.

        Returns:
            The validated settings.

        Raises:
            ValueError: A known field has an invalid value.
        """
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def enhance(pixels: np.ndarray, settings: EnhanceSettings = EnhanceSettings()) -> np.ndarray:
    """Apply the display enhancement described by ``settings``.

    Args:
        pixels: Grayscale image (H, W), nominally in ``[0, 1]`` (values outside
            are clipped first).
        settings: The parameters; the defaults apply CLAHE and mild sharpening.

    Returns:
        A new float32 array of the same shape, in ``[0, 1]``. The input is not
        modified.

    Raises:
        ValueError: ``pixels`` is not a non-empty 2-D array of finite numbers.
    """
    image = np.asarray(pixels, dtype=np.float32)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"pixels must be a non-empty 2-D array, got shape {image.shape}.")
    if not np.isfinite(image).all():
        raise ValueError("pixels must not contain NaN or infinite values.")
    image = np.clip(image, 0.0, 1.0)
    image = _window(image, settings.window_center, settings.window_width)
    image = _denoise(image, settings.denoise, settings.denoise_strength)
    image = _clahe(image, settings.clahe_clip_limit, settings.clahe_tiles)
    if settings.gamma != 1.0:
        image = exposure.adjust_gamma(image, settings.gamma)
    if settings.unsharp_amount > 0:
        image = filters.unsharp_mask(
            image,
            radius=settings.unsharp_radius,
            amount=settings.unsharp_amount,
            preserve_range=True,
        )
    return np.ascontiguousarray(np.clip(image, 0.0, 1.0), dtype=np.float32)


@dataclass(frozen=True)
class SavedView:
    """A stored scan as it is shown again (see :func:`enhance_as_saved`).

    Attributes:
        pixels: Float32 (H, W) image in [0, 1].
        as_saved: Whether ``pixels`` carry the enhancement saved with the scan.
        caption: One sentence saying which: :data:`SAVED_CAPTION` or :data:`ORIGINAL_CAPTION`.
    """

    pixels: np.ndarray
    as_saved: bool
    caption: str


def enhance_as_saved(pixels: np.ndarray, stored: Mapping[str, Any] | None) -> SavedView:
    """Show a stored scan the way it was enhanced when saved, or say why it is not.

    The one rule for settings that no longer validate (saved by another app version, say): the
    original pixels are shown and the caption says so. The defaults would be an enhancement
    nobody chose for this scan, shown as if it were the saved one, and contrast equalisation
    and sharpening can change how an opacity looks; the original image is at least the image
    the patient uploaded. Settings with missing keys still load (see
    :meth:`EnhanceSettings.from_dict`), so ``None`` or ``{}`` give the defaults.

    Args:
        pixels: The stored decoded image, float (H, W) in [0, 1].
        stored: The enhancement settings stored with the scan (``to_dict`` output).

    Returns:
        The image to show, whether it is as saved, and its caption.
    """
    try:
        settings = EnhanceSettings.from_dict(stored or {})
    except ValueError:
        original = np.ascontiguousarray(np.clip(pixels, 0.0, 1.0), dtype=np.float32)
        return SavedView(original, as_saved=False, caption=ORIGINAL_CAPTION)
    return SavedView(enhance(pixels, settings), as_saved=True, caption=SAVED_CAPTION)


def _window(image: np.ndarray, center: float, width: float) -> np.ndarray:
    if center == 0.5 and width == 1.0:
        return image
    low = center - width / 2.0
    return np.clip((image - low) / width, 0.0, 1.0)


def _denoise(image: np.ndarray, method: str, strength: float) -> np.ndarray:
    if method == "tv":
        return restoration.denoise_tv_chambolle(image, weight=strength)
    if method == "nl_means":
        return restoration.denoise_nl_means(
            image,
            h=strength,
            patch_size=_NL_MEANS_PATCH_SIZE,
            patch_distance=_NL_MEANS_PATCH_DISTANCE,
            fast_mode=True,
        )
    return image


def _clahe(image: np.ndarray, clip_limit: float, tiles: int) -> np.ndarray:
    if clip_limit <= 0 or float(image.max()) <= float(image.min()):
        # A flat image has no contrast to equalise (skimage would divide by zero).
        return image
    height, width = image.shape
    kernel = (max(height // tiles, 2), max(width // tiles, 2))
    return equalize_adapthist(image, kernel, clip_limit)
