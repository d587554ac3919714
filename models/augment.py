"""Random acquisition changes applied to preprocessed training images.

The official Kermany test split is shifted from train (its normal images look more
"pneumonic"), and uploads come from other hospitals again. The changes below are the
ones that differ between X-ray sites and that the per-image standardisation of
``models.preprocess`` does not remove: positioning, the aspect ratio the publisher
stretched away, non-linear exposure curves (gamma), detector sharpness and noise.
Every output is re-standardised, so the network sees what inference gives it.

The same function, at a higher ``strength``, makes the perturbed validation copies on
which temperatures and thresholds are fitted (post-hoc calibration for domain drift,
Tomani et al., CVPR 2021).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

_BLUR_KERNEL = torch.tensor([1.0, 2.0, 1.0]) / 4


def _uniform(n: int, half_width: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * 2 - 1) * half_width


def _standardise(images: torch.Tensor) -> torch.Tensor:
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    std = images.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
    return (images - mean) / std


def _warp(images: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    n = images.shape[0]
    angle = _uniform(n, math.radians(8) * strength, generator)
    # Independent x/y zoom changes the aspect ratio, as the publisher's stretch did.
    scale_x = 1 + _uniform(n, 0.12 * strength, generator)
    scale_y = 1 + _uniform(n, 0.12 * strength, generator)
    shift = torch.stack([_uniform(n, 0.06 * strength, generator) for _ in range(2)], 1)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([cos / scale_x, -sin / scale_x, shift[:, 0]], 1),
            torch.stack([sin / scale_y, cos / scale_y, shift[:, 1]], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    floor = images.amin(dim=(1, 2, 3), keepdim=True)
    # Pad with each image's own darkest value, as a collimated border would look.
    return F.grid_sample(images - floor, grid, padding_mode="zeros", align_corners=False) + floor


def _gamma(images: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    low = images.amin(dim=(1, 2, 3), keepdim=True)
    high = images.amax(dim=(1, 2, 3), keepdim=True)
    unit = (images - low) / (high - low).clamp_min(1e-6)
    gamma = torch.exp(_uniform(images.shape[0], math.log(1.6) * strength, generator)).view(
        -1, 1, 1, 1
    )
    return unit.clamp_min(0) ** gamma


def _sharpness(images: torch.Tensor, generator: torch.Generator, strength: float) -> torch.Tensor:
    kernel = (_BLUR_KERNEL[:, None] * _BLUR_KERNEL[None, :]).view(1, 1, 3, 3)
    blurred = F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel)
    # Negative amounts blur, positive ones sharpen (unsharp mask).
    amount = _uniform(images.shape[0], 0.8 * strength, generator).view(-1, 1, 1, 1)
    return images + amount * (images - blurred)


def augment(
    images: torch.Tensor, generator: torch.Generator, strength: float = 1.0
) -> torch.Tensor:
    """Apply random positioning, aspect, exposure, sharpness and noise changes.

    Args:
        images: Preprocessed images (N, 1, S, S), each standardised.
        generator: Seeded generator; the same seed gives the same output.
        strength: Multiplier of every range; 0 leaves images unchanged up to
            re-standardisation, 1 is the training setting.

    Returns:
        Tensor of the same shape, each image standardised to zero mean and unit variance.
    """
    images = _warp(images, generator, strength)
    images = _standardise(_gamma(images, generator, strength))
    images = _sharpness(images, generator, strength)
    noise_level = torch.rand(images.shape[0], 1, 1, 1, generator=generator) * 0.05 * strength
    images = images + torch.randn(images.shape, generator=generator) * noise_level
    return _standardise(images)
