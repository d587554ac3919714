"""Tests for core.thumbnails."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from core.thumbnails import thumbnail_png, thumbnail_url


def test_thumbnail_keeps_the_aspect_ratio_within_its_side() -> None:
    pixels = np.linspace(0, 1, 400 * 200, dtype=np.float32).reshape(400, 200)
    image = Image.open(io.BytesIO(thumbnail_png(pixels, side=64)))
    assert image.size == (32, 64) and image.mode == "L"


def test_data_url_holds_the_same_png() -> None:
    pixels = np.zeros((50, 50), dtype=np.float32)
    url = thumbnail_url(pixels, side=20)
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == thumbnail_png(pixels, side=20)
