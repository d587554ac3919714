"""Property tests for core.imaging.decode_scan: any input gives a usable image or a ScanError.

The contract the upload page relies on: whatever bytes arrive, ``decode_scan``
either returns float32 pixels in ``[0, 1]`` at least ``MIN_SIDE`` pixels on each
side, or raises a :class:`ScanError`; never any other exception.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.imaging import MIN_SIDE, DecodedScan, ScanError, decode_scan
from tests.core.test_hostile_inputs import _dicom

# pydicom warns about the invalid values that mutations create; the property is what matters.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom.*")

_PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
#: Starts of every recognised format, so that arbitrary bodies reach each decoder.
_MAGIC_PREFIXES = (b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"\0" * 128 + b"DICM")


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _gradient(side: int = 72) -> np.ndarray:
    rows, cols = np.mgrid[0:side, 0:side]
    return ((rows + cols) * 255 // (2 * side - 2)).astype(np.uint8)


@cache
def _valid_png() -> bytes:
    return _encode(Image.fromarray(_gradient()), "PNG")


@cache
def _valid_jpeg() -> bytes:
    return _encode(Image.fromarray(_gradient()), "JPEG")


@cache
def _valid_dicom() -> bytes:
    return _dicom((_gradient().astype(np.uint16) * 16).tobytes(), rows=72, columns=72)


def _assert_usable_or_scan_error(data: bytes) -> DecodedScan | None:
    """Decode ``data``; a ScanError is an accepted outcome, anything else fails the test."""
    try:
        scan = decode_scan(data, "upload.png")
    except ScanError:
        return None
    pixels = scan.pixels
    assert isinstance(pixels, np.ndarray) and pixels.dtype == np.float32
    assert pixels.ndim == 2 and min(pixels.shape) >= MIN_SIDE
    assert np.isfinite(pixels).all()
    assert float(pixels.min()) >= 0.0 and float(pixels.max()) <= 1.0
    assert (scan.metadata.height, scan.metadata.width) == pixels.shape
    return scan


@st.composite
def _mutated(draw: st.DrawFn, source: bytes) -> bytes:
    """``source`` with a few random byte overwrites, insertions, deletions and maybe a cut."""
    data = bytearray(source)
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(("overwrite", "insert", "delete")))
        position = draw(st.integers(0, len(data) - 1))
        if action == "overwrite":
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif len(data) > 1:
            del data[position : position + draw(st.integers(1, 16))]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@_PROPERTY_SETTINGS
@given(prefix=st.sampled_from(_MAGIC_PREFIXES), body=st.binary(max_size=4096))
def test_arbitrary_bytes_give_an_image_or_a_scan_error(prefix: bytes, body: bytes) -> None:
    _assert_usable_or_scan_error(prefix + body)


@_PROPERTY_SETTINGS
@given(data=st.deferred(lambda: _mutated(_valid_png())))
def test_mutated_png_gives_an_image_or_a_scan_error(data: bytes) -> None:
    _assert_usable_or_scan_error(data)


@_PROPERTY_SETTINGS
@given(data=st.deferred(lambda: _mutated(_valid_jpeg())))
def test_mutated_jpeg_gives_an_image_or_a_scan_error(data: bytes) -> None:
    _assert_usable_or_scan_error(data)


@_PROPERTY_SETTINGS
@given(data=st.deferred(lambda: _mutated(_valid_dicom())))
def test_mutated_dicom_gives_an_image_or_a_scan_error(data: bytes) -> None:
    _assert_usable_or_scan_error(data)


@pytest.mark.parametrize(
    "source", [_valid_png, _valid_jpeg, _valid_dicom], ids=["png", "jpeg", "dicom"]
)
def test_unmutated_sources_decode(source: Callable[[], bytes]) -> None:
    # Guards the properties above: were the sources themselves refused, they would test nothing.
    assert _assert_usable_or_scan_error(source()) is not None
