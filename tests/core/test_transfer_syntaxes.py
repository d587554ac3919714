"""Every transfer syntax a chest film arrives in: the same real pixels encoded in each decode
identically (lossless) or closely (lossy), and the decoder's limits hold in each.

The pixels are a real PA chest CR (NEMA WG04 ``RG1``, 15 bits stored) reduced eight times;
``tests.dicom_files`` encodes them (pydicom's encoders, Pillow, and its own JPEG Lossless
and 12-bit JPEG Extended encoders). A fixed window maps stored values to display values,
so a lossless syntax must give bit-identical pixels.
"""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom import uid
from pydicom.encaps import encapsulate, generate_frames

from core.imaging import (
    CorruptScan,
    ExcessiveCompression,
    NotChestRadiograph,
    TooManyPixels,
    decode_scan,
)
from tests.dicom_files import film_bytes, to_bytes

CODECS = Path("external") / "dicom_codecs"

#: (id, transfer syntax, encoder options) of every lossless way to store the film.
LOSSLESS = [
    ("implicit-le", uid.ImplicitVRLittleEndian, {}),
    ("explicit-le", uid.ExplicitVRLittleEndian, {}),
    ("explicit-be", uid.ExplicitVRBigEndian, {}),
    ("deflated", uid.DeflatedExplicitVRLittleEndian, {}),
    ("rle", uid.RLELossless, {}),
    ("jpeg-ls-lossless", uid.JPEGLSLossless, {}),
    ("j2k-lossless", uid.JPEG2000Lossless, {}),
    ("jpeg-lossless-sv1", uid.JPEGLosslessSV1, {}),
    *[
        (f"jpeg-lossless-p14-predictor-{p}", uid.JPEGLossless, {"predictor": p})
        for p in range(1, 8)
    ],
]

#: (id, transfer syntax, encoder options, bits stored, largest display error allowed).
LOSSY = [
    # Near-lossless: no stored value moves by more than NEAR (3), i.e. 3 / 4095 on screen.
    ("jpeg-ls-near-lossless", uid.JPEGLSNearLossless, {"jls_error": 3}, 12, 3 / 4095),
    ("j2k-lossy", uid.JPEG2000, {"j2k_cr": [10]}, 12, 0.05),
    ("jpeg-extended-12-bit", uid.JPEGExtended12Bit, {"quantizer": 4}, 12, 0.02),
    ("jpeg-baseline-8-bit", uid.JPEGBaseline8Bit, {"quality": 90}, 8, 0.06),
]

COMPRESSED = [(case[0], case[1], case[2]) for case in LOSSLESS + LOSSY if case[1].is_compressed]


@pytest.fixture(scope="module")
def film15(shared_data: Path) -> np.ndarray:
    """The real film's stored values (15 bits), averaged over 8 x 8 blocks to 244 x 230."""
    stored = pydicom.dcmread(shared_data / CODECS / "RG1_JLSN.dcm").pixel_array
    blocks = stored[:1952, :1840].reshape(244, 8, 230, 8).mean(axis=(1, 3))
    return np.rint(blocks).astype(np.uint16)


def _film(film15: np.ndarray, bits: int) -> np.ndarray:
    return (film15 >> (15 - bits)).astype(np.uint8 if bits == 8 else np.uint16)


def _window(bits: int) -> dict[str, Any]:
    return {"WindowCenter": 1 << (bits - 1), "WindowWidth": 1 << bits}


def _encoded(pixels: np.ndarray, syntax: str, options: dict[str, Any], bits: int) -> bytes:
    return film_bytes(pixels, syntax, bits_stored=bits, encode=options, **_window(bits))


@pytest.mark.parametrize("bits", [12, 15])
@pytest.mark.parametrize(
    ("syntax", "options"), [c[1:] for c in LOSSLESS], ids=[c[0] for c in LOSSLESS]
)
def test_lossless_syntaxes_decode_to_identical_pixels(
    film15: np.ndarray, syntax: str, options: dict[str, Any], bits: int
) -> None:
    pixels = _film(film15, bits)
    reference = decode_scan(_encoded(pixels, uid.ExplicitVRLittleEndian, {}, bits))
    data = _encoded(pixels, syntax, options, bits)
    assert pydicom.dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID == syntax
    scan = decode_scan(data)
    np.testing.assert_array_equal(scan.pixels, reference.pixels)
    assert scan.metadata.bits == bits and scan.metadata.frames == 1


@pytest.mark.parametrize(
    ("syntax", "options", "bits", "tolerance"), [c[1:] for c in LOSSY], ids=[c[0] for c in LOSSY]
)
def test_lossy_syntaxes_decode_close_to_the_original(
    film15: np.ndarray, syntax: str, options: dict[str, Any], bits: int, tolerance: float
) -> None:
    pixels = _film(film15, bits)
    reference = decode_scan(_encoded(pixels, uid.ExplicitVRLittleEndian, {}, bits)).pixels
    data = _encoded(pixels, syntax, options, bits)
    decoded = decode_scan(data).pixels
    assert len(data) < pixels.nbytes  # it did compress
    assert float(np.abs(decoded - reference).max()) <= tolerance + 1e-6
    assert float(np.abs(decoded - reference).mean()) < 0.01
    assert np.corrcoef(decoded.ravel(), reference.ravel())[0, 1] > 0.99


@pytest.mark.parametrize(
    ("syntax", "options"),
    [
        (uid.JPEGLossless, {"predictor": 6}),
        (uid.JPEGLSLossless, {}),
        (uid.JPEG2000Lossless, {}),
        (uid.RLELossless, {}),
        (uid.ExplicitVRLittleEndian, {}),
    ],
    ids=["jpeg-lossless", "jpeg-ls", "j2k", "rle", "native"],
)
def test_multi_frame_objects_give_their_first_frame_with_a_note(
    film15: np.ndarray, syntax: str, options: dict[str, Any]
) -> None:
    first = _film(film15, 12)
    frames = np.stack([first, 4095 - first, first // 2])
    scan = decode_scan(_encoded(frames, syntax, options, 12))
    single = decode_scan(_encoded(first, uid.ExplicitVRLittleEndian, {}, 12))
    np.testing.assert_array_equal(scan.pixels, single.pixels)
    assert scan.metadata.frames == 3
    assert scan.notes == ("This file holds 3 images; only the first one was read.",)


# --------------------------------------------------------------------------- limits


def _relabelled(data: bytes, **attributes: Any) -> bytes:
    dataset = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    return to_bytes(dataset)


@pytest.mark.parametrize(
    ("syntax", "options"),
    [(c[1], c[2]) for c in LOSSLESS + LOSSY],
    ids=[c[0] for c in LOSSLESS + LOSSY],
)
def test_pixel_cap_and_ratio_hold_in_every_syntax(
    film15: np.ndarray, syntax: str, options: dict[str, Any]
) -> None:
    bits = 8 if syntax == uid.JPEGBaseline8Bit else 12
    data = _encoded(_film(film15, bits), syntax, options, bits)
    with pytest.raises(TooManyPixels):
        decode_scan(_relabelled(data, Rows=7000, Columns=7000))
    # 4000 x 4000 is under the pixel cap, but far more than a file of this size can hold:
    # refused from the header when compressed; native Pixel Data is simply too short.
    expected = ExcessiveCompression if uid.UID(syntax).is_compressed else CorruptScan
    started = time.perf_counter()
    with pytest.raises(expected):
        decode_scan(_relabelled(data, Rows=4000, Columns=4000))
    assert time.perf_counter() - started < 0.5


def _claim_size(frame: bytes, rows: int, columns: int) -> bytes:
    """The frame with its own header (JPEG SOFn / JPEG-LS SOF55, or JPEG 2000 SIZ) patched."""
    data = bytearray(frame)
    if frame.startswith(b"\xff\xd8"):
        offset = 2
        while data[offset + 1] not in {0xC0, 0xC1, 0xC3, 0xF7}:
            offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
        data[offset + 5 : offset + 9] = struct.pack(">HH", rows, columns)
    else:
        data[8:16] = struct.pack(">II", columns, rows)  # Xsiz, Ysiz (no image offset)
    return bytes(data)


@pytest.mark.parametrize(
    ("syntax", "options"),
    [(s, o) for name, s, o in COMPRESSED if s != uid.RLELossless],
    ids=[name for name, s, _ in COMPRESSED if s != uid.RLELossless],
)
def test_a_frame_claiming_a_huge_size_is_refused_before_decoding(
    film15: np.ndarray, syntax: str, options: dict[str, Any]
) -> None:
    bits = 8 if syntax == uid.JPEGBaseline8Bit else 12
    dataset = pydicom.dcmread(io.BytesIO(_encoded(_film(film15, bits), syntax, options, bits)))
    (frame,) = generate_frames(dataset.PixelData, number_of_frames=1)
    dataset.PixelData = encapsulate([_claim_size(frame, 60_000, 60_000)])
    started = time.perf_counter()
    with pytest.raises(CorruptScan):
        decode_scan(to_bytes(dataset))
    assert time.perf_counter() - started < 0.5


# --------------------------------------------------------------------------- real films


def test_real_jpeg_ls_chest_decodes(shared_data: Path) -> None:
    scan = decode_scan((shared_data / CODECS / "RG1_JLSN.dcm").read_bytes())
    assert scan.pixels.shape == (1955, 1841)
    assert (scan.metadata.body_part, scan.metadata.view_position) == ("CHEST", "PA")
    assert 0.1 < float(scan.pixels.mean()) < 0.9


def test_the_real_chest_in_jpeg_ls_and_jpeg_2000_decodes_alike(shared_data: Path) -> None:
    # The same film in two lossy hospital compressions (MONOCHROME1, inverted alike).
    jpeg_ls = decode_scan((shared_data / CODECS / "RG1_JLSN.dcm").read_bytes()).pixels
    j2k = decode_scan((shared_data / CODECS / "RG1_J2KI.dcm").read_bytes()).pixels
    assert float(np.abs(jpeg_ls - j2k).mean()) < 0.01
    assert np.corrcoef(jpeg_ls.ravel(), j2k.ravel())[0, 1] > 0.99


@pytest.mark.parametrize(
    ("name", "sentence"),
    [
        ("RG2_JPLL.dcm", "This is not a chest X-ray: the file says it shows the hip."),
        ("RG3_JPLL.dcm", "This is not a chest X-ray: the file says it shows an arm or a leg."),
    ],
)
def test_real_films_of_other_body_parts_are_refused_as_not_chest(
    shared_data: Path, name: str, sentence: str
) -> None:
    data = (shared_data / CODECS / name).read_bytes()
    with pytest.raises(NotChestRadiograph) as caught:
        decode_scan(data)
    assert str(caught.value) == sentence
    # The film itself is readable (JPEG Lossless SV1): only its body part keeps it out.
    header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    chest = decode_scan(_relabelled(data, BodyPartExamined="CHEST"))
    assert chest.pixels.shape == (header.Rows, header.Columns)
