"""Tests for core.imaging: decoding real samples, every validation error, and the command line."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from datetime import date
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.uid import (
    MPEG2MPML,
    BasicTextSRStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    EncapsulatedPDFStorage,
    GrayscaleSoftcopyPresentationStateStorage,
    KeyObjectSelectionDocumentStorage,
)

from core import imaging
from core.imaging import (
    CorruptScan,
    DecodedScan,
    EmptyScan,
    ImageTooSmall,
    NoPixelData,
    NotChestRadiograph,
    ScanError,
    ScanTooLarge,
    TooManyPixels,
    UnsupportedCompression,
    UnsupportedFormat,
    UnsupportedPhotometric,
    decode_scan,
    to_uint8,
)
from tests.dicom_files import new_dataset, to_bytes

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REAL_DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
FAKE_MONOCHROME1 = "Fake_MONOHR1.dcm"
MB = 1024 * 1024


# --------------------------------------------------------------------------- builders


def _encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _noise(shape: tuple[int, ...], seed: int = 0, dtype: type = np.uint8) -> np.ndarray:
    high = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, high, size=shape, endpoint=True).astype(dtype)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A well-formed PNG whose IHDR claims the given size but whose pixel data is a stub."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _dicom(
    pixels: np.ndarray | None,
    *,
    photometric: str = "MONOCHROME2",
    preamble: bool = True,
    **attributes: object,
) -> bytes:
    """An uncompressed DX DICOM file built in memory (12 bits stored in 16)."""
    dataset = new_dataset(DigitalXRayImageStorageForPresentation, preamble=preamble)
    dataset.Modality = "DX"
    dataset.PhotometricInterpretation = photometric
    if pixels is not None:
        dataset.Rows, dataset.Columns = pixels.shape[:2]
        dataset.SamplesPerPixel = 1 if pixels.ndim == 2 else pixels.shape[2]
        if pixels.ndim == 3:
            dataset.PlanarConfiguration = 0
        dataset.BitsAllocated = 16
        dataset.BitsStored = 12
        dataset.HighBit = 11
        dataset.PixelRepresentation = 0
        dataset.PixelData = pixels.astype(np.uint16).tobytes()
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    return to_bytes(dataset, enforce_file_format=preamble)


def _ramp(rows: int = 80, columns: int = 100) -> np.ndarray:
    """12-bit horizontal ramp 0..4095."""
    return np.tile(np.linspace(0, 4095, columns).round(), (rows, 1)).astype(np.uint16)


def _assert_normalised(scan: DecodedScan) -> None:
    assert scan.pixels.dtype == np.float32
    assert scan.pixels.ndim == 2
    assert scan.pixels.shape == (scan.metadata.height, scan.metadata.width)
    assert float(scan.pixels.min()) >= 0.0 and float(scan.pixels.max()) <= 1.0


# --------------------------------------------------------------------------- real samples


def test_every_sample_decodes(samples_dir: Path) -> None:
    files = sorted(p for p in samples_dir.iterdir() if p.is_file())
    assert len(files) >= 6
    for path in files:
        scan = decode_scan(path.read_bytes(), path.name)
        _assert_normalised(scan)
        assert (
            scan.metadata.source_format
            == {".png": "png", ".jpg": "jpeg", ".dcm": "dicom"}[path.suffix]
        )
        assert float(scan.pixels.std()) > 0.05, f"{path.name} decoded to a nearly flat image"
        # The sample JPEGs store three identical channels: gray, not a colour photograph.
        assert scan.metadata.colorfulness < 0.01
        json.dumps(scan.metadata.to_dict())


def test_monochrome1_decodes_to_the_negative_of_monochrome2(samples_dir: Path) -> None:
    positive = decode_scan((samples_dir / REAL_DICOM).read_bytes()).pixels
    negative = decode_scan((samples_dir / FAKE_MONOCHROME1).read_bytes()).pixels
    correlation = np.corrcoef(positive.ravel(), negative.ravel())[0, 1]
    assert correlation < -0.99


def test_real_dicom_metadata(samples_dir: Path) -> None:
    meta = decode_scan((samples_dir / REAL_DICOM).read_bytes()).metadata
    assert meta.source_format == "dicom"
    assert meta.modality == "CR"
    assert meta.photometric == "MONOCHROME2"
    assert (meta.width, meta.height) == (1024, 1024)
    assert meta.study_date == date(1901, 1, 1)
    assert meta.view_position == "PA"
    assert meta.body_part == "CHEST"
    assert meta.patient_sex == "M"
    assert meta.patient_age == 62
    assert meta.pixel_spacing == pytest.approx((0.168, 0.168))
    assert meta.bits == 8
    assert meta.colorfulness == 0.0
    as_dict = meta.to_dict()
    assert as_dict["study_date"] == "1901-01-01"
    assert as_dict["pixel_spacing"] == pytest.approx([0.168, 0.168])


def test_png_and_jpeg_have_no_dicom_metadata(samples_dir: Path) -> None:
    meta = decode_scan((samples_dir / "00000001_000.png").read_bytes()).metadata
    assert meta.modality is None and meta.study_date is None and meta.patient_age is None
    assert meta.photometric == "L" and meta.bits == 8
    assert [label for label, _ in meta.display_rows()] == ["File type", "Size", "Pixel encoding"]


def test_display_rows_of_real_dicom(samples_dir: Path) -> None:
    rows = dict(decode_scan((samples_dir / REAL_DICOM).read_bytes()).metadata.display_rows())
    assert rows["File type"] == "DICOM"
    assert rows["Size"] == "1024 x 1024 pixels"
    assert rows["Study date"] == "1901-01-01"
    assert rows["Age"] == "62 years"
    assert rows["Pixel spacing"] == "0.168 x 0.168 mm"
    assert rows["Pixel encoding"] == "MONOCHROME2, 8 bits"


@pytest.mark.filterwarnings("ignore:End of file reached")  # pydicom notes the cut
def test_truncated_real_dicom_is_corrupt(samples_dir: Path) -> None:
    data = (samples_dir / REAL_DICOM).read_bytes()
    for cut in (1000, len(data) // 2, len(data) - 10):
        with pytest.raises(CorruptScan):
            decode_scan(data[:cut])


def test_dicom_compression_without_decoder_is_refused(samples_dir: Path) -> None:
    # MPEG-2 video: a real transfer syntax that no still-image decoder reads.
    dataset = pydicom.dcmread(samples_dir / REAL_DICOM)
    dataset.file_meta.TransferSyntaxUID = MPEG2MPML
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    with pytest.raises(UnsupportedCompression):
        decode_scan(buffer.getvalue())


# --------------------------------------------------------------------------- PNG / JPEG variants


def test_16_bit_png_is_stretched_to_full_range() -> None:
    pixels = (_ramp() * 4).astype(np.uint16)  # 14-bit data in a 16-bit PNG
    scan = decode_scan(_encode(Image.fromarray(pixels)))
    _assert_normalised(scan)
    assert scan.metadata.bits == 16
    assert scan.pixels.min() == 0.0 and scan.pixels.max() == 1.0
    assert np.all(np.diff(scan.pixels[0]) >= 0), "a ramp must stay monotonic"


def test_8_bit_gray_png_keeps_its_values() -> None:
    pixels = _noise((70, 90))
    scan = decode_scan(_encode(Image.fromarray(pixels)))
    np.testing.assert_allclose(scan.pixels, pixels / 255.0, atol=1e-6)


def test_rgb_uses_luminance_and_records_colorfulness() -> None:
    rgb = np.zeros((64, 64, 3), dtype=np.uint8)
    rgb[:, :32, 0] = 255  # red half
    rgb[:, 32:, 1] = 255  # green half
    scan = decode_scan(_encode(Image.fromarray(rgb)))
    assert scan.metadata.photometric == "RGB"
    assert scan.pixels[0, 0] == pytest.approx(0.299, abs=1e-3)
    assert scan.pixels[0, 63] == pytest.approx(0.587, abs=1e-3)
    assert scan.metadata.colorfulness == pytest.approx(1.0)


def test_gray_stored_as_rgb_is_not_colourful() -> None:
    gray = _noise((64, 80))
    rgb = np.stack([gray] * 3, axis=-1)
    scan = decode_scan(_encode(Image.fromarray(rgb)))
    assert scan.metadata.colorfulness == 0.0
    np.testing.assert_allclose(scan.pixels, gray / 255.0, atol=1e-3)


def test_rgba_is_composited_on_black() -> None:
    rgba = np.full((64, 64, 4), 255, dtype=np.uint8)
    rgba[:, 32:, 3] = 0  # right half fully transparent
    scan = decode_scan(_encode(Image.fromarray(rgba, mode="RGBA")))
    assert scan.metadata.photometric == "RGBA"
    assert scan.pixels[:, :32].min() == pytest.approx(1.0)
    assert scan.pixels[:, 32:].max() == 0.0


def test_palette_png_is_converted_through_its_palette() -> None:
    image = Image.fromarray(_noise((64, 64))).convert("P")
    gray_of_palette = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    scan = decode_scan(_encode(image))
    assert scan.metadata.photometric == "P"
    np.testing.assert_allclose(scan.pixels, gray_of_palette, atol=1 / 255)


def test_jpeg_decodes() -> None:
    data = _encode(Image.fromarray(_noise((96, 128))), "JPEG", quality=90)
    scan = decode_scan(data, "photo.jpg")
    _assert_normalised(scan)
    assert scan.metadata.source_format == "jpeg"
    assert scan.metadata.photometric == "L"


def test_type_comes_from_content_not_extension() -> None:
    png = _encode(Image.fromarray(_noise((64, 64))))
    assert decode_scan(png, "scan.dcm").metadata.source_format == "png"
    assert decode_scan(png, None).metadata.source_format == "png"


# --------------------------------------------------------------------------- validation errors


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", EmptyScan),
        (b"This is a text file, not an image.\n" * 10, UnsupportedFormat),
        (b"GIF89a" + b"\0" * 200, UnsupportedFormat),
        (b"\0" * 127 + b"DICM" + b"\0" * 64, UnsupportedFormat),  # magic at the wrong offset
        (_png_header_only(30_000, 30_000), TooManyPixels),  # over twice the limit: Pillow error
        (_png_header_only(6_000, 6_000), TooManyPixels),  # over the limit: Pillow warning
        (_png_header_only(25_001, 1_000), TooManyPixels),  # just over the limit
    ],
    ids=["zero-byte", "text", "gif", "misplaced-dicm", "bomb-error", "bomb-warning", "over-cap"],
)
def test_bad_input_raises_its_typed_error(data: bytes, error: type[ScanError]) -> None:
    with pytest.raises(error) as caught:
        decode_scan(data, "upload.png")
    _assert_patient_sentence(caught.value)


def _assert_patient_sentence(err: ScanError) -> None:
    message = str(err)
    assert err.code and err.code != ScanError.code
    assert message.endswith(".") and message.count(". ") == 0 and "\n" not in message
    assert "Error" not in message and "Traceback" not in message


def test_text_file_named_png() -> None:
    with pytest.raises(UnsupportedFormat, match="not a PNG, JPEG or DICOM image"):
        decode_scan(b"hello, I am plain text", "chest.png")


def test_size_cap_is_enforced_before_decoding() -> None:
    data = _encode(Image.fromarray(_noise((64, 64))))
    with pytest.raises(ScanTooLarge) as caught:
        decode_scan(data, max_bytes=len(data) - 1)
    _assert_patient_sentence(caught.value)
    assert decode_scan(data, max_bytes=len(data)).pixels.shape == (64, 64)


def test_size_cap_defaults_to_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_UPLOAD_MB", "1")
    data = _encode(Image.fromarray(_noise((1100, 1100), seed=3)))
    assert len(data) > MB
    with pytest.raises(ScanTooLarge, match="1 MB"):
        decode_scan(data)


@pytest.mark.parametrize("shape", [(32, 32), (63, 500), (500, 10)])
def test_tiny_images_are_refused(shape: tuple[int, int]) -> None:
    with pytest.raises(ImageTooSmall) as caught:
        decode_scan(_encode(Image.fromarray(_noise(shape))))
    _assert_patient_sentence(caught.value)


def test_smallest_accepted_image() -> None:
    assert decode_scan(_encode(Image.fromarray(_noise((64, 64))))).pixels.shape == (64, 64)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_raster_is_corrupt(fmt: str) -> None:
    data = _encode(Image.fromarray(_noise((200, 200))), fmt)
    with pytest.raises(CorruptScan) as caught:
        decode_scan(data[: len(data) // 2])
    _assert_patient_sentence(caught.value)


def test_png_with_bad_checksum_is_corrupt() -> None:
    data = bytearray(_encode(Image.fromarray(_noise((80, 80)))))
    data[40] ^= 0xFF  # inside the first IDAT
    with pytest.raises(CorruptScan):
        decode_scan(bytes(data))


# --------------------------------------------------------------------------- DICOM built in code


def test_dicom_without_pixel_data() -> None:
    with pytest.raises(NoPixelData) as caught:
        decode_scan(_dicom(None))
    _assert_patient_sentence(caught.value)


@pytest.mark.parametrize(
    ("sop_class", "modality", "kind"),
    [
        (BasicTextSRStorage, "SR", "a structured report (text, not an image)"),
        (BasicTextSRStorage, "", "a structured report (text, not an image)"),
        (
            GrayscaleSoftcopyPresentationStateStorage,
            "PR",
            "a presentation state (display settings, not an image)",
        ),
        (
            KeyObjectSelectionDocumentStorage,
            "KO",
            "a key-object selection (a list of chosen images, not an image)",
        ),
        (EncapsulatedPDFStorage, "DOC", "a document, not an image"),
    ],
    ids=["sr", "sr-by-sop-class", "pr", "ko", "pdf"],
)
def test_objects_without_an_image_are_named(sop_class: str, modality: str, kind: str) -> None:
    with pytest.raises(NotChestRadiograph) as caught:
        decode_scan(_dicom(None, SOPClassUID=sop_class, Modality=modality))
    assert str(caught.value) == f"This is not a chest X-ray: it is {kind}."


@pytest.mark.parametrize(
    ("body_part", "shown"),
    [
        ("HIP", "the hip"),
        ("EXTREMITY", "an arm or a leg"),
        ("SKULL", "the skull"),
        ("L KNEE", "a knee"),
        ("TSPINE", "the upper back (thoracic spine)"),
    ],
)
def test_a_film_of_another_body_part_is_refused_as_not_chest(body_part: str, shown: str) -> None:
    with pytest.raises(NotChestRadiograph) as caught:
        decode_scan(_dicom(_ramp(), BodyPartExamined=body_part))
    assert str(caught.value) == f"This is not a chest X-ray: the file says it shows {shown}."


@pytest.mark.parametrize(
    "body_part", ["CHEST", "THORAX", "CHEST_TO_PELVIS", "PORT CHEST", "RIB", ""]
)
def test_chest_and_unknown_body_parts_decode(body_part: str) -> None:
    assert decode_scan(_dicom(_ramp(), BodyPartExamined=body_part)).pixels.shape == (80, 100)


def test_a_ct_slice_decodes_for_the_image_checks_to_refuse() -> None:
    # Image modalities are judged after decoding, with colour and blank images (core.scope).
    scan = decode_scan(_dicom(_ramp(), SOPClassUID=CTImageStorage, Modality="CT"))
    assert scan.metadata.modality == "CT"


def test_dicom_without_preamble_is_not_accepted() -> None:
    data = _dicom(_ramp(), preamble=False)
    assert data[128:132] != b"DICM"
    with pytest.raises(UnsupportedFormat):
        decode_scan(data, "scan.dcm")


def test_truncated_uncompressed_dicom_is_corrupt() -> None:
    data = _dicom(_ramp(200, 200))
    with pytest.raises(CorruptScan):
        decode_scan(data[: len(data) - 5000])


def test_dicom_pixel_count_is_checked_before_decoding() -> None:
    # The header claims 10000 x 10000 but only a few bytes of pixels follow.
    data = _dicom(_ramp(), Rows=10_000, Columns=10_000)
    with pytest.raises(TooManyPixels):
        decode_scan(data)


def test_tiny_dicom_is_refused() -> None:
    with pytest.raises(ImageTooSmall):
        decode_scan(_dicom(_ramp(32, 32)))


@pytest.mark.parametrize("photometric", ["RGB", "YBR_FULL"])
def test_colour_dicom_is_refused(photometric: str) -> None:
    pixels = np.zeros((64, 64, 3), dtype=np.uint16)
    with pytest.raises(UnsupportedPhotometric) as caught:
        decode_scan(_dicom(pixels, photometric=photometric))
    _assert_patient_sentence(caught.value)


def test_palette_dicom_is_refused() -> None:
    with pytest.raises(UnsupportedPhotometric):
        decode_scan(_dicom(_ramp(), photometric="PALETTE COLOR"))


def test_multi_frame_dicom_gives_its_first_frame_with_a_note() -> None:
    first, second = _ramp(), 4095 - _ramp()
    data = _dicom(np.concatenate([first, second]), Rows=80, Columns=100, NumberOfFrames=2)
    scan = decode_scan(data)
    np.testing.assert_array_equal(scan.pixels, decode_scan(_dicom(first)).pixels)
    assert scan.metadata.frames == 2
    assert scan.notes == ("This file holds 2 images; only the first one was read.",)
    assert ("Images in the file", "2, the first shown") in scan.metadata.display_rows()
    assert decode_scan(_dicom(first)).notes == ()


def test_dicom_without_window_is_stretched() -> None:
    pixels = _ramp() // 2 + 100  # occupies 100..2147 of the 12-bit range
    scan = decode_scan(_dicom(pixels))
    assert scan.pixels.min() == 0.0 and scan.pixels.max() == 1.0
    assert scan.metadata.bits == 12 and scan.metadata.modality == "DX"


def test_dicom_window_maps_center_to_mid_gray() -> None:
    scan = decode_scan(_dicom(_ramp(), WindowCenter=2048, WindowWidth=1024))
    row = scan.pixels[0]
    values = _ramp()[0].astype(float)
    assert np.all(row[values <= 2048 - 512 - 1] == 0.0)
    assert np.all(row[values >= 2048 + 512] == 1.0)
    inside = (values > 2048 - 512) & (values < 2048 + 511)
    np.testing.assert_allclose(row[inside], (values[inside] - 2047.5) / 1023 + 0.5, atol=1e-5)


def test_modality_lut_is_applied_before_window() -> None:
    # Rescale to Hounsfield-like units: stored 1000 -> 0, window centred there.
    scan = decode_scan(
        _dicom(_ramp(), RescaleSlope=1, RescaleIntercept=-1000, WindowCenter=0, WindowWidth=400)
    )
    values = _ramp()[0].astype(float)
    middle = np.argmin(np.abs(values - 1000))
    assert scan.pixels[0, middle] == pytest.approx(0.5, abs=0.05)
    assert scan.pixels[0, 0] == 0.0 and scan.pixels[0, -1] == 1.0


def test_multi_valued_window_uses_the_first() -> None:
    scan = decode_scan(_dicom(_ramp(), WindowCenter=[2048, 100], WindowWidth=[1024, 50]))
    reference = decode_scan(_dicom(_ramp(), WindowCenter=2048, WindowWidth=1024))
    np.testing.assert_array_equal(scan.pixels, reference.pixels)


def test_voi_lut_sequence_takes_precedence_over_window() -> None:
    lut = pydicom.Dataset()
    lut.add_new(0x00283002, "US", [4096, 0, 16])  # LUT Descriptor: entries, first value, bits
    lut.add_new(0x00283006, "US", [4095 - value for value in range(4096)])  # reversing LUT Data
    data = _dicom(_ramp(), VOILUTSequence=[lut], WindowCenter=100, WindowWidth=10)
    pixels = decode_scan(data).pixels
    np.testing.assert_allclose(pixels[0], 1.0 - _ramp()[0] / 4095, atol=1e-6)


def test_monochrome1_window_is_inverted() -> None:
    plain = decode_scan(_dicom(_ramp(), WindowCenter=2048, WindowWidth=4096)).pixels
    inverted = decode_scan(
        _dicom(_ramp(), photometric="MONOCHROME1", WindowCenter=2048, WindowWidth=4096)
    ).pixels
    np.testing.assert_allclose(inverted, 1.0 - plain, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # malformed on purpose
@pytest.mark.parametrize(
    ("age", "years"),
    [("045Y", 45), ("006M", 0), ("030M", 2), ("003W", 0), ("010D", 0), ("62", 62), ("abc", None)],
)
def test_patient_age_is_parsed_to_years(age: str, years: int | None) -> None:
    assert decode_scan(_dicom(_ramp(), PatientAge=age)).metadata.patient_age == years


@pytest.mark.filterwarnings("ignore:Invalid value for VR")  # malformed on purpose
def test_dicom_dates_and_spacing() -> None:
    meta = decode_scan(
        _dicom(
            _ramp(),
            StudyDate="20240131",
            ImagerPixelSpacing=[0.2, 0.25],
            ViewPosition="AP",
            BodyPartExamined="CHEST",
            PatientSex="F",
        )
    ).metadata
    assert meta.study_date == date(2024, 1, 31)
    assert meta.pixel_spacing == pytest.approx((0.2, 0.25))
    assert (meta.view_position, meta.body_part, meta.patient_sex) == ("AP", "CHEST", "F")
    assert decode_scan(_dicom(_ramp(), StudyDate="20241341")).metadata.study_date is None


# --------------------------------------------------------------------------- robustness


_SMALL_PNG = _encode(Image.fromarray(_noise((72, 72), seed=7)))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(8, len(_SMALL_PNG) - 1), st.integers(0, 255)), max_size=6))
def test_mutated_png_never_leaks_other_exceptions(edits: list[tuple[int, int]]) -> None:
    data = bytearray(_SMALL_PNG)
    for position, value in edits:
        data[position] = value
    try:
        scan = decode_scan(bytes(data))
    except ScanError:
        return
    _assert_normalised(scan)


_SMALL_DICOM = _dicom(_ramp(64, 64), WindowCenter=2048, WindowWidth=4096, PatientAge="045Y")


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the damage it reads
@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(132, len(_SMALL_DICOM) - 1), st.integers(0, 255)), max_size=6)
)
def test_mutated_dicom_never_leaks_other_exceptions(edits: list[tuple[int, int]]) -> None:
    data = bytearray(_SMALL_DICOM)
    for position, value in edits:
        data[position] = value
    try:
        scan = decode_scan(bytes(data))
    except ScanError:
        return
    _assert_normalised(scan)


@settings(max_examples=30, deadline=None)
@given(
    st.binary(min_size=0, max_size=400),
    st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"\0" * 128 + b"DICM", b""]),
)
def test_garbage_behind_magic_raises_scan_error(body: bytes, magic: bytes) -> None:
    with pytest.raises(ScanError):
        decode_scan(magic + body)


def test_to_uint8_clips_and_rounds() -> None:
    pixels = np.array([[0.0, 0.5, 1.0], [-1.0, 2.0, np.nan]], dtype=np.float32)
    np.testing.assert_array_equal(to_uint8(pixels), [[0, 128, 255], [0, 255, 0]])
    assert to_uint8(pixels).dtype == np.uint8


def test_pillow_bomb_limit_is_the_module_constant() -> None:
    assert Image.MAX_IMAGE_PIXELS == imaging.MAX_PIXELS


# --------------------------------------------------------------------------- command line


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.imaging", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_cli_reports_each_file_and_saves_png(samples_dir: Path, tmp_path: Path) -> None:
    files = [samples_dir / "00000001_000.png", samples_dir / REAL_DICOM]
    result = _cli(*map(str, files), "--save-png", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["file"] for row in rows] == [str(f) for f in files]
    assert all(row["ok"] and row["error"] is None for row in rows)
    assert set(rows[0]) == {
        "file",
        "ok",
        "width",
        "height",
        "modality",
        "photometric",
        "study_date",
        "view",
        "error",
    }
    assert rows[1]["modality"] == "CR" and rows[1]["study_date"] == "1901-01-01"
    # A PNG states no view; the real CR file's View Position is PA.
    assert rows[0]["view"] is None and rows[1]["view"] == "PA"
    saved = Image.open(tmp_path / "out" / f"{REAL_DICOM}.png")
    assert saved.mode == "L" and saved.size == (rows[1]["width"], rows[1]["height"])


def test_cli_continues_past_failures_and_exits_2(samples_dir: Path, tmp_path: Path) -> None:
    text_file = tmp_path / "notes.png"
    text_file.write_text("not an image")
    missing = tmp_path / "missing.dcm"
    good = samples_dir / "00027426_000.png"
    result = _cli(str(text_file), str(missing), str(good))
    assert result.returncode == 2
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["ok"] for row in rows] == [False, False, True]
    assert rows[0]["error"] == UnsupportedFormat.default_message
    assert "does not exist" in rows[1]["error"]
    assert "Traceback" not in result.stderr


def test_cli_uses_the_settings_size_cap(samples_dir: Path) -> None:
    env = {**os.environ, "MAX_UPLOAD_MB": "1"}
    big = samples_dir / "covid-19-pneumonia-58-prior.jpg"
    result = _cli(str(big), env=env)
    assert result.returncode == 2
    assert "1 MB" in json.loads(result.stdout)["error"]
