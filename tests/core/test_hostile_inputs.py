"""Hostile uploads against core.imaging: malformed, truncated, bomb, polyglot and misnamed files.

Every file is built in code. Each refused file must raise its precise
:class:`ScanError` subclass with a message that is one plain sentence; the few
files whose image part is valid (a payload appended after a PNG, oversized text
metadata within the limits) must decode to exactly the clean image, since only
pixels and a whitelist of short metadata values ever leave the decoder.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from core.imaging import (
    CorruptScan,
    EmptyScan,
    ExcessiveCompression,
    ImageTooSmall,
    NoPixelData,
    ScanError,
    ScanTooLarge,
    TooManyPixels,
    UnsupportedCompression,
    UnsupportedFormat,
    decode_scan,
)
from tests.dicom_files import new_dataset, to_bytes

# pydicom warns while writing and reading the deliberately invalid files built here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom.*")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
#: Words that would betray an internal error in a user-facing message.
_INTERNAL_WORDS = ("Error", "Exception", "Traceback", "PIL", "pydicom", "zlib", "numpy", 'File "')
_ALL_ERROR_NAMES = {cls.__name__ for cls in (ScanError, *ScanError.__subclasses__())}


# --------------------------------------------------------------------------- builders


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _noise_image(side: int = 128, seed: int = 0) -> Image.Image:
    return Image.fromarray(
        np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8)
    )


@cache
def _png() -> bytes:
    return _encode(_noise_image(), "PNG")


@cache
def _jpeg() -> bytes:
    return _encode(_noise_image(), "JPEG", quality=90)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_from_chunks(ihdr: bytes, idat: bytes, extra: bytes = b"") -> bytes:
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + extra
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def _ihdr(width: int, height: int, bit_depth: int = 8, colour_type: int = 0) -> bytes:
    return struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)


def _png_with_chunk_before_idat(chunk: bytes) -> bytes:
    """The noise PNG with ``chunk`` inserted right after IHDR (signature 8 + IHDR 25 bytes)."""
    png = _png()
    return png[:33] + chunk + png[33:]


def _idat_offset(png: bytes) -> int:
    """Offset of the first byte of the first IDAT chunk's data."""
    return png.index(b"IDAT") + 4


@cache
def _png_bomb(side: int = 30_000, rows_per_block: int = 250) -> bytes:
    """A 1-bit ``side`` x ``side`` PNG whose IDAT is a genuine ~110 KB zlib stream of zeros.

    Each block is compressed after a full flush, so every block's bytes are
    identical and the stream is assembled by repetition instead of compressing
    over 100 MB: blocks, a final empty fixed-Huffman block (``03 00``) and the
    Adler-32 of ``n`` zero bytes, which is ``(n mod 65521) << 16 | 1``.
    """
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    block = row * rows_per_block
    compressor = zlib.compressobj(9)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    blocks = side // rows_per_block
    total = len(block) * blocks
    stream = (
        first + repeated * (blocks - 1) + b"\x03\x00" + struct.pack(">I", (total % 65521) << 16 | 1)
    )
    return _png_from_chunks(_ihdr(side, side, bit_depth=1), stream)


def _jpeg_with_frame_size(height: int, width: int) -> bytes:
    """The noise JPEG with its SOF0 header patched to claim another size."""
    data = bytearray(_jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _dicom(
    pixel_data: bytes | None = None,
    *,
    rows: int = 80,
    columns: int = 100,
    transfer_syntax: str = ExplicitVRLittleEndian,
    bits: int = 16,
    **attributes: object,
) -> bytes:
    """A DX DICOM built in memory; ``pixel_data=None`` gives a ramp of ``rows`` x ``columns``."""
    dataset = new_dataset(DigitalXRayImageStorageForPresentation, transfer_syntax)
    dataset.Modality = "DX"
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.Rows, dataset.Columns = rows, columns
    dataset.SamplesPerPixel = 1
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = (
        bits,
        min(bits, 12),
        min(bits, 12) - 1,
    )
    dataset.PixelRepresentation = 0
    if pixel_data is None:
        ramp = np.tile(np.linspace(0, 4095, columns).round(), (rows, 1)).astype(np.uint16)
        pixel_data = ramp.tobytes()
    dataset.PixelData = pixel_data
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    return to_bytes(dataset)


def _dicom_without_pixels() -> bytes:
    data = _dicom()
    dataset = pydicom.dcmread(io.BytesIO(data))
    del dataset.PixelData
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def _dicom_pixel_data_offset(data: bytes) -> int:
    return data.index(_PIXEL_DATA_TAG)


def _dicom_jpeg_with_frame_size(height: int, width: int) -> bytes:
    """An 8-bit JPEG-baseline DICOM of 128 x 128 whose encapsulated frame claims another size."""
    data = _dicom(
        encapsulate([_jpeg_with_frame_size(height, width)]),
        rows=128,
        columns=128,
        transfer_syntax=JPEGBaseline8Bit,
        bits=8,
    )
    dataset = pydicom.dcmread(io.BytesIO(data))
    dataset["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def _dicom_jpeg_claiming(rows: int, columns: int) -> bytes:
    """A JPEG-baseline DICOM whose header claims ``rows`` x ``columns`` but holds 128 x 128."""
    data = _dicom(
        encapsulate([_jpeg()]), rows=rows, columns=columns, transfer_syntax=JPEGBaseline8Bit, bits=8
    )
    dataset = pydicom.dcmread(io.BytesIO(data))
    dataset["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def _dataset_start(data: bytes) -> int:
    """Offset of the first element after the File Meta group, from its group length."""
    group_length = pydicom.dcmread(
        io.BytesIO(data), stop_before_pixels=True
    ).file_meta.FileMetaInformationGroupLength
    return 128 + 4 + 12 + group_length


@cache
def _deflate_bomb() -> bytes:
    """A Deflated-transfer-syntax DICOM of ~300 KB whose dataset inflates to over 300 MB.

    The dataset is the ramp DICOM's with Pixel Data re-declared as 300 MB of
    zeros. The deflate stream is assembled from one full-flush block repeated
    (identical bytes each time, see :func:`_png_bomb`) and a final empty
    fixed-Huffman block, instead of compressing 300 MB.
    """
    size = 300 * 1024 * 1024
    plain = _dicom()
    pixel_tag = _dicom_pixel_data_offset(plain)
    dataset = (
        plain[_dataset_start(plain) : pixel_tag]
        + _PIXEL_DATA_TAG
        + b"OW\0\0"
        + struct.pack("<I", size)
    )
    block = b"\0" * (1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = compressor.compress(dataset) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    deflated_file = _dicom(transfer_syntax=DeflatedExplicitVRLittleEndian)
    file_meta = deflated_file[: _dataset_start(deflated_file)]
    return file_meta + head + repeated * (size // len(block)) + b"\x03\x00"


# --------------------------------------------------------------------------- cases


def _truncated(source: Callable[[], bytes], cut: Callable[[bytes], int]) -> Callable[[], bytes]:
    return lambda: source()[: cut(source())]


#: (id, builder, expected error). Builders are called lazily so collection stays fast.
_REFUSED: list[tuple[str, Callable[[], bytes], type[ScanError]]] = [
    ("zero-byte", lambda: b"", EmptyScan),
    # Truncated PNG: inside the signature, inside IHDR, right after IHDR, inside IDAT.
    ("png-cut-in-signature", _truncated(_png, lambda d: 5), UnsupportedFormat),
    ("png-signature-only", _truncated(_png, lambda d: 8), CorruptScan),
    ("png-cut-in-ihdr", _truncated(_png, lambda d: 20), CorruptScan),
    ("png-cut-after-ihdr", _truncated(_png, lambda d: 33), CorruptScan),
    ("png-cut-at-idat-start", _truncated(_png, lambda d: _idat_offset(d) + 10), CorruptScan),
    ("png-cut-mid-idat", _truncated(_png, lambda d: len(d) // 2), CorruptScan),
    # Truncated JPEG: SOI only, inside the headers, inside the entropy-coded data, before EOI.
    ("jpeg-soi-only", _truncated(_jpeg, lambda d: 3), CorruptScan),
    ("jpeg-cut-in-headers", _truncated(_jpeg, lambda d: 100), CorruptScan),
    ("jpeg-cut-mid-scan", _truncated(_jpeg, lambda d: len(d) // 2), CorruptScan),
    ("jpeg-cut-before-eoi", _truncated(_jpeg, lambda d: len(d) - 200), CorruptScan),
    # Truncated DICOM: preamble only, File Meta only, just after the Pixel Data tag, mid-pixels.
    ("dicom-preamble-only", _truncated(_dicom, lambda d: 128), UnsupportedFormat),
    ("dicom-prefix-only", _truncated(_dicom, lambda d: 132), NoPixelData),
    (
        "dicom-cut-in-pixel-header",
        _truncated(_dicom, lambda d: _dicom_pixel_data_offset(d) + 6),
        CorruptScan,
    ),
    (
        "dicom-cut-after-pixel-header",
        _truncated(_dicom, lambda d: _dicom_pixel_data_offset(d) + 12),
        CorruptScan,
    ),
    ("dicom-cut-mid-pixels", _truncated(_dicom, lambda d: len(d) - len(d) // 3), CorruptScan),
    # Decompression bombs and absurd sizes, refused from the header.
    ("png-bomb-30000x30000", _png_bomb, TooManyPixels),
    (
        "png-ihdr-4g-by-4g",
        lambda: _png_from_chunks(_ihdr(2**32 - 1, 2**32 - 1), zlib.compress(b"\0")),
        TooManyPixels,
    ),
    (
        "png-ihdr-zero-width",
        lambda: _png_from_chunks(_ihdr(0, 100), zlib.compress(b"\0" * 100)),
        CorruptScan,
    ),
    (
        "png-ihdr-bad-bit-depth",
        lambda: _png_from_chunks(_ihdr(100, 100, 7), zlib.compress(b"\0")),
        CorruptScan,
    ),
    ("png-1x70000", lambda: _encode(Image.new("L", (1, 70_000)), "PNG"), ImageTooSmall),
    ("jpeg-sof-65500x65500", lambda: _jpeg_with_frame_size(65_500, 65_500), TooManyPixels),
    ("jpeg-sof-zero-height", lambda: _jpeg_with_frame_size(0, 128), CorruptScan),
    # A few kilobytes claiming a whole film: over the pixel cap, or under it but far more
    # pixels than the file could hold (the decompression-ratio limit).
    ("jpeg-sof-7000x7000", lambda: _jpeg_with_frame_size(7_000, 7_000), TooManyPixels),
    ("jpeg-sof-4000x4000", lambda: _jpeg_with_frame_size(4_000, 4_000), ExcessiveCompression),
    (
        "png-ihdr-4000x4000-stub",
        lambda: _png_from_chunks(_ihdr(4_000, 4_000), zlib.compress(b"\0" * 64)),
        ExcessiveCompression,
    ),
    ("dicom-jpeg-claims-7000x7000", lambda: _dicom_jpeg_claiming(7_000, 7_000), TooManyPixels),
    (
        "dicom-jpeg-claims-4000x4000",
        lambda: _dicom_jpeg_claiming(4_000, 4_000),
        ExcessiveCompression,
    ),
    (
        "dicom-65535x65535-tiny-pixels",
        lambda: _dicom(b"\0" * 16, rows=65_535, columns=65_535),
        TooManyPixels,
    ),
    (
        "dicom-pixels-shorter-than-rows-x-columns",
        lambda: _dicom(b"\0" * 2000, rows=256, columns=256),
        CorruptScan,
    ),
    (
        "dicom-65535-rows-short-pixels",
        lambda: _dicom(b"\0" * 2000, rows=65_535, columns=64),
        CorruptScan,
    ),
    # A million frames declared, one held: the declared pixel bytes are not there.
    ("dicom-million-frames", lambda: _dicom(NumberOfFrames=1_000_000), CorruptScan),
    (
        "dicom-jpeg-frame-claims-60000x60000",
        lambda: _dicom_jpeg_with_frame_size(60_000, 60_000),
        CorruptScan,
    ),
    ("dicom-deflate-bomb-300mb", _deflate_bomb, ScanTooLarge),
    ("dicom-without-pixels", _dicom_without_pixels, NoPixelData),
    ("dicom-zero-bits-allocated", lambda: _dicom(BitsAllocated=0), CorruptScan),
    (
        "dicom-unknown-transfer-syntax",
        lambda: _dicom(transfer_syntax="1.2.3.4.5"),
        UnsupportedCompression,
    ),
    # Compressed text chunks that inflate far beyond Pillow's text limit.
    (
        "png-ztxt-bomb",
        lambda: _png_with_chunk_before_idat(
            _chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * 50_000_000, 9))
        ),
        CorruptScan,
    ),
    (
        "png-iccp-bomb",
        lambda: _png_with_chunk_before_idat(
            _chunk(b"iCCP", b"profile\0\0" + zlib.compress(b"A" * 50_000_000, 9))
        ),
        CorruptScan,
    ),
    # Other formats and active content, whatever the name says.
    ("gif89a-header", lambda: b"GIF89a" + b"\0" * 200, UnsupportedFormat),
    ("gif-image", lambda: _encode(Image.new("L", (100, 100)), "GIF"), UnsupportedFormat),
    (
        "pdf",
        lambda: b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
        UnsupportedFormat,
    ),
    (
        "svg",
        lambda: (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="512" '
            b'height="512"><script>alert(1)</script></svg>'
        ),
        UnsupportedFormat,
    ),
    (
        "html",
        lambda: b"<!DOCTYPE html><html><body onload=alert(1)><img src=x></body></html>",
        UnsupportedFormat,
    ),
    ("zip", lambda: b"PK\x03\x04" + b"\0" * 200, UnsupportedFormat),
    ("tiff", lambda: _encode(Image.new("L", (100, 100)), "TIFF"), UnsupportedFormat),
    ("bmp", lambda: _encode(Image.new("L", (100, 100)), "BMP"), UnsupportedFormat),
    ("dicm-at-wrong-offset", lambda: b"\0" * 127 + b"DICM" + b"\0" * 64, UnsupportedFormat),
    ("png-signature-then-garbage", lambda: _PNG_SIGNATURE + bytes(range(256)) * 4, CorruptScan),
    ("jpeg-soi-then-garbage", lambda: b"\xff\xd8\xff" + bytes(range(256)) * 4, CorruptScan),
]


def _assert_one_plain_sentence(err: ScanError) -> None:
    message = str(err)
    assert message.endswith("."), message
    assert "\n" not in message and "\r" not in message
    assert message.count(". ") == 0 and message[0].isupper()
    assert not any(word in message for word in _INTERNAL_WORDS), message
    assert not any(name in message for name in _ALL_ERROR_NAMES), message


def test_the_suite_has_at_least_thirty_hostile_files() -> None:
    assert len(_REFUSED) >= 30


@pytest.mark.parametrize(
    ("builder", "expected"), [case[1:] for case in _REFUSED], ids=[c[0] for c in _REFUSED]
)
def test_hostile_file_raises_its_precise_error(
    builder: Callable[[], bytes], expected: type[ScanError]
) -> None:
    # A traversal name throughout: the decoder must never use it.
    with pytest.raises(ScanError) as caught:
        decode_scan(builder(), "../../etc/passwd.png")
    assert type(caught.value) is expected, f"{type(caught.value).__name__}: {caught.value}"
    assert caught.value.code == expected.code
    _assert_one_plain_sentence(caught.value)


def test_oversized_upload_is_refused_before_parsing() -> None:
    with pytest.raises(ScanTooLarge) as caught:
        decode_scan(_png(), "scan.png", max_bytes=len(_png()) - 1)
    _assert_one_plain_sentence(caught.value)


@pytest.mark.parametrize(
    ("builder", "expected"),
    [
        (lambda: _jpeg_with_frame_size(7_000, 7_000), TooManyPixels),
        (lambda: _jpeg_with_frame_size(4_000, 4_000), ExcessiveCompression),
        (lambda: _dicom_jpeg_claiming(4_000, 4_000), ExcessiveCompression),
    ],
    ids=["jpeg-7000x7000", "jpeg-4000x4000", "dicom-jpeg-4000x4000"],
)
def test_tiny_file_claiming_a_huge_image_is_refused_fast_from_its_header(
    builder: Callable[[], bytes], expected: type[ScanError]
) -> None:
    data = builder()
    assert len(data) < 16 * 1024
    started = time.perf_counter()
    with pytest.raises(expected) as caught:
        decode_scan(data)
    # Decoding 16-49 megapixels takes seconds; reading the header takes milliseconds.
    assert time.perf_counter() - started < 0.5
    _assert_one_plain_sentence(caught.value)


def test_large_heavily_compressed_radiograph_is_not_mistaken_for_a_bomb(
    samples_dir: Path,
) -> None:
    # A real film upscaled to 3000 x 3000 (smoother than any detector image) and saved at
    # JPEG quality 30 compresses about 56:1, far past the 12:1 of real uploads.
    film = Image.open(samples_dir / "00000001_000.png").convert("L").resize((3000, 3000))
    data = _encode(film, "JPEG", quality=30)
    assert 40 < 3000 * 3000 / len(data) < 100
    assert decode_scan(data).pixels.shape == (3000, 3000)


# -------------------------------------------------------------------- valid image, hostile extras


def _clean_pixels() -> np.ndarray:
    return decode_scan(_png()).pixels


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda: _png() + b"PK\x03\x04" + b"\0" * 26 + b"payload.exe", id="png+zip"),
        pytest.param(
            lambda: _png() + b"<html><script>alert(document.cookie)</script></html>", id="png+html"
        ),
        pytest.param(lambda: _png()[:-12], id="png-without-iend"),
        pytest.param(
            lambda: _png_with_chunk_before_idat(_chunk(b"tEXt", b"Comment\0" + b"A" * 10_000_000)),
            id="png-10mb-text-chunk",
        ),
    ],
)
def test_valid_image_with_hostile_extras_decodes_to_the_clean_pixels(
    data: Callable[[], bytes],
) -> None:
    scan = decode_scan(data(), "../../etc/passwd.png")
    np.testing.assert_array_equal(scan.pixels, _clean_pixels())
    assert scan.metadata.source_format == "png"


def test_content_not_name_decides_the_format() -> None:
    as_dicom_name = decode_scan(_png(), "scan.dcm")
    as_traversal_name = decode_scan(_jpeg(), "../../etc/passwd.png")
    assert as_dicom_name.metadata.source_format == "png"
    assert as_traversal_name.metadata.source_format == "jpeg"


def test_huge_dicom_text_never_reaches_the_metadata() -> None:
    data = _dicom(
        PatientName="A" * 10_000_000, ViewPosition="P" * 100_000, BodyPartExamined="CHEST\nIGNORE"
    )
    scan = decode_scan(data)
    assert scan.metadata.view_position is None and scan.metadata.body_part is None
    assert len(json.dumps(scan.metadata.to_dict())) < 1000


def test_short_dicom_text_is_kept() -> None:
    scan = decode_scan(_dicom(ViewPosition="PA", BodyPartExamined="CHEST"))
    assert (scan.metadata.view_position, scan.metadata.body_part) == ("PA", "CHEST")


def test_small_deflated_dicom_still_decodes() -> None:
    data = _dicom(transfer_syntax=DeflatedExplicitVRLittleEndian)
    scan = decode_scan(data)
    assert scan.pixels.shape == (80, 100)


# ------------------------------------------------------------------------ command line --save-png


_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*\.png$")


def test_cli_save_png_writes_only_inside_dir_with_sanitized_names(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("untouched")
    out = tmp_path / "out"
    out.mkdir()
    # A link planted where the output would go must be replaced, never written through.
    (out / "passwd.png.png").symlink_to(outside)
    names = [
        "passwd.png",
        "..png",
        ".hidden.png",
        "evil name;rm -rf ~.png",
        "line\nbreak.png",
        "ünï.png",
    ]
    for name in names:
        (inputs / name).write_bytes(_png())
    # Paths that walk up and back down; only their base names may matter.
    arguments = [str(inputs / ".." / "in" / name) for name in names]
    result = subprocess.run(
        [sys.executable, "-m", "core.imaging", *arguments, "--save-png", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 0, result.stderr
    written = sorted(out.iterdir())
    assert len(written) == len(names)
    assert all(path.is_file() and not path.is_symlink() for path in written)
    assert all(_SAFE_NAME.match(path.name) for path in written), [p.name for p in written]
    assert outside.read_text() == "untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "outside.txt"]
    assert Image.open(out / "passwd.png.png").size == (128, 128)
