"""Training augmentation: shapes, standardisation, determinism and strength."""

import torch

from models.augment import augment


def _images(n: int = 6, size: int = 32) -> torch.Tensor:
    images = torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(1))
    return (images - images.mean(dim=(1, 2, 3), keepdim=True)) / images.std(
        dim=(1, 2, 3), keepdim=True
    )


def test_output_keeps_shape_and_is_standardised_per_image():
    out = augment(_images(), torch.Generator().manual_seed(0))
    assert out.shape == (6, 1, 32, 32)
    assert torch.allclose(out.mean(dim=(1, 2, 3)), torch.zeros(6), atol=1e-5)
    assert torch.allclose(out.std(dim=(1, 2, 3)), torch.ones(6), atol=1e-4)


def test_same_seed_same_output_other_seed_other_output():
    images = _images()
    first = augment(images, torch.Generator().manual_seed(0))
    again = augment(images, torch.Generator().manual_seed(0))
    other = augment(images, torch.Generator().manual_seed(1))
    assert torch.equal(first, again)
    assert not torch.allclose(first, other, atol=1e-2)


def test_zero_strength_leaves_images_unchanged():
    images = _images()
    assert torch.allclose(
        augment(images, torch.Generator().manual_seed(0), strength=0.0), images, atol=1e-4
    )


def test_stronger_perturbation_moves_images_further():
    images = _images(n=64)
    distance = {
        strength: (augment(images, torch.Generator().manual_seed(0), strength) - images)
        .abs()
        .mean()
        .item()
        for strength in (0.5, 1.0, 1.5)
    }
    assert distance[0.5] < distance[1.0] < distance[1.5]
