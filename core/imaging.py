"""Decoding of uploaded chest radiographs (PNG, JPEG, DICOM) into normalised grayscale pixels.

Every upload goes through :func:`decode_scan`, which recognises the file type
by its content (never by its name), enforces the size and pixel limits before
any full decode, and returns a float32 image in ``[0, 1]`` where bright means
dense tissue, together with the metadata that the rest of the app needs.
Anything wrong with the input surfaces as a :class:`ScanError` subclass whose
message is one sentence a patient understands; no other exception type escapes
for bad input.

Run as a command to check files::

    python -m core.imaging FILE [FILE ...] [--save-png DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import struct
import sys
import warnings
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pydicom
from PIL import Image, ImageOps
from pydicom import uid
from pydicom.encaps import get_frame
from pydicom.filereader import read_dataset, read_preamble
from pydicom.pixels import apply_modality_lut, apply_voi_lut, get_decoder, pixel_array

from core.dicom_header import (
    dicom_age,
    dicom_date,
    dicom_orientation,
    dicom_text,
    dicom_view,
    out_of_scope,
)
from core.errors import UserError
from core.settings import load_settings
from core.views import VIEW_LABELS, View

#: Largest image accepted, in pixels (width x height). Also installed as Pillow's
#: decompression-bomb limit so that a tiny compressed file cannot expand into
#: gigabytes of memory. The largest chest detectors are about 4300 x 3500 (15 MP) and a
#: 14 x 17 inch film scanned at 300 dpi is 4200 x 5100 (21 MP); 25 MP keeps both with room
#: to spare while bounding a decode to about 100 MB of float32 pixels.
MAX_PIXELS = 25_000_000

#: Largest accepted ratio of the pixel bytes an image declares (width x height x samples x
#: bytes per sample) to the size of its file. Real radiographs compress about 2:1 (PNG) to
#: 12:1 (JPEG); even a blank JPEG or a heavily compressed upscaled one stays under 90:1.
#: A header that claims far more pixels than its file could hold is a decompression bomb.
MAX_COMPRESSION_RATIO = 100

#: Below this many declared pixel bytes (a 2048 x 2048 8-bit image) the ratio is not
#: checked: decoding costs little, and small blank test images compress beyond any ratio.
_RATIO_CHECK_FLOOR = 4 * 1024 * 1024

#: Smallest accepted width and height: below this nothing can be read on a chest film.
MIN_SIDE = 64

Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"
_DICOM_MAGIC = b"DICM"
_DICOM_MAGIC_OFFSET = 128
#: Tag (7FE0,0010) Pixel Data as stored in little-endian transfer syntaxes.
_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"
#: Largest dataset a Deflated-transfer-syntax DICOM may inflate to: 16-bit pixels at
#: the pixel limit plus room for attributes. pydicom inflates without any bound, so a
#: few hundred kilobytes could otherwise expand into gigabytes.
_MAX_INFLATED_BYTES = 2 * MAX_PIXELS + 16 * 1024 * 1024
_INFLATE_STEP = 1024 * 1024

#: The one decoder used for each compressed transfer syntax, so that a file decodes the same
#: way on every machine (pydicom would otherwise try whichever plugins are installed, in its
#: own order, and log each failure). Pillow (libjpeg-turbo) keeps 8-bit baseline JPEG as the
#: app always decoded it; CharLS (pyjpegls) decodes JPEG-LS about four times faster than
#: libjpeg; pylibjpeg's libjpeg, OpenJPEG and RLE plugins take the rest.
_DECODING_PLUGINS: dict[str, str] = {
    uid.JPEGBaseline8Bit: "pillow",
    uid.JPEGExtended12Bit: "pylibjpeg",
    uid.JPEGLossless: "pylibjpeg",
    uid.JPEGLosslessSV1: "pylibjpeg",
    uid.JPEGLSLossless: "pyjpegls",
    uid.JPEGLSNearLossless: "pyjpegls",
    uid.JPEG2000Lossless: "pylibjpeg",
    uid.JPEG2000: "pylibjpeg",
    uid.HTJ2KLossless: "pylibjpeg",
    uid.HTJ2KLosslessRPCL: "pylibjpeg",
    uid.HTJ2K: "pylibjpeg",
    uid.RLELossless: "pylibjpeg",
}
#: Syntaxes whose frames start with a JPEG or JPEG-LS header (SOI, then SOFn or SOF55).
_JPEG_SYNTAXES = frozenset(uid.JPEGTransferSyntaxes) | frozenset(uid.JPEGLSTransferSyntaxes)
#: Syntaxes whose frames are JPEG 2000 codestreams (SOC, then SIZ).
_J2K_SYNTAXES = frozenset(uid.JPEG2000TransferSyntaxes)
#: JPEG start-of-frame markers (ITU T.81 B.1.1.3: C0-CF less DHT, JPG and DAC) and JPEG-LS SOF55.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
#: JPEG markers without a length field (TEM, RSTn, SOI, EOI).
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xDA)})
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"

#: ITU-R BT.601 luma weights, the ones Pillow uses for RGB -> L.
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)

_GRAY_PHOTOMETRICS = frozenset({"MONOCHROME1", "MONOCHROME2"})


# --------------------------------------------------------------------------- errors


class ScanError(UserError, ValueError):
    """An upload that cannot be used; ``str(err)`` is one plain sentence for the user.

    Attributes:
        code: Short stable identifier of the failure, for logs and tests.
    """

    code = "scan_error"
    default_message = "This file could not be read as a radiograph."


class EmptyScan(ScanError):
    """The upload has no bytes."""

    code = "empty"
    default_message = "This file is empty."


class ScanTooLarge(ScanError):
    """The upload exceeds the byte limit."""

    code = "too_large"
    default_message = "This file is larger than the app accepts."


class UnsupportedFormat(ScanError):
    """The content is not PNG, JPEG or DICOM (whatever the file name says)."""

    code = "unsupported_format"
    default_message = "This file is not a PNG, JPEG or DICOM image."


class TooManyPixels(ScanError):
    """The image declares more than :data:`MAX_PIXELS` pixels (decompression-bomb guard)."""

    code = "too_many_pixels"
    default_message = (
        f"This image has more than {MAX_PIXELS // 1_000_000} million pixels, "
        "which is more than the app accepts."
    )


class ExcessiveCompression(ScanError):
    """The header declares far more pixel data than the file size can hold (a bomb)."""

    code = "compression_ratio"
    default_message = (
        "This image claims far more pixels than a file of its size can hold, "
        "so it was refused as unsafe."
    )


class ImageTooSmall(ScanError):
    """The image is narrower or shorter than :data:`MIN_SIDE` pixels."""

    code = "too_small"
    default_message = (
        f"This image is smaller than {MIN_SIDE} pixels on one side, too small to analyse."
    )


class CorruptScan(ScanError):
    """The file is truncated or damaged so that its pixels cannot be decoded."""

    code = "corrupt"
    default_message = "This image file is damaged or incomplete, so it could not be read."


class NoPixelData(ScanError):
    """A DICOM file that carries no image (a report, a structured document...)."""

    code = "no_pixel_data"
    default_message = "This DICOM file contains no image."


class UnsupportedPhotometric(ScanError):
    """A DICOM whose pixels are not grayscale (MONOCHROME1 or MONOCHROME2)."""

    code = "unsupported_photometric"
    default_message = (
        "This DICOM file holds a colour image, but only grayscale X-ray images are supported."
    )


class NotChestRadiograph(ScanError):
    """A DICOM whose header says it is not a chest film (another body part, a report...)."""

    code = "not_chest"
    default_message = "This is not a chest X-ray."


class UnsupportedCompression(ScanError):
    """A DICOM compressed with a scheme no installed decoder handles."""

    code = "unsupported_compression"
    default_message = "This DICOM file uses a compression the app cannot read."


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ScanMetadata:
    """What is known about a decoded scan.

    Attributes:
        source_format: ``'png'``, ``'jpeg'`` or ``'dicom'``, detected from the content.
        width: Columns of the decoded image.
        height: Rows of the decoded image.
        modality: DICOM Modality (0008,0060), e.g. ``'CR'`` or ``'DX'``; ``None``
            for PNG/JPEG.
        photometric: DICOM Photometric Interpretation (0028,0004) for DICOM; the
            Pillow mode of the file (``'L'``, ``'RGB'``, ``'I;16'``...) for PNG/JPEG.
        study_date: DICOM Study Date (0008,0020); ``None`` when absent or invalid.
        view_position: DICOM View Position (0018,5101), e.g. ``'PA'``.
        view: The projection the header states (:func:`core.views.view_from_header`: View
            Position, else Patient Orientation; AP supine from Patient Position or a
            description); ``None`` for PNG/JPEG or a header that does not say.
        body_part: DICOM Body Part Examined (0018,0015), e.g. ``'CHEST'``.
        patient_sex: DICOM Patient's Sex (0010,0040): ``'M'``, ``'F'`` or ``'O'``.
        patient_age: DICOM Patient's Age (0010,1010) in whole years (``'045Y'`` ->
            45, months/weeks/days -> 0).
        pixel_spacing: Row and column spacing in mm from Pixel Spacing
            (0028,0030), else Imager Pixel Spacing (0018,1164).
        bits: Bits per stored sample (DICOM Bits Stored (0028,0101); 8 or 16
            for PNG/JPEG, 1 for bilevel PNG).
        colorfulness: Mean chroma, ``max(R,G,B) - min(R,G,B)`` averaged over the
            image in ``[0, 1]``; 0 for grayscale sources. A high value means a
            colour photograph rather than a radiograph.
        patient_birth_year: Year of DICOM Patient's Birth Date (0010,0030); ``None`` when
            absent or invalid (only the year is kept: enough to suggest the account's).
        frames: DICOM Number of Frames (0028,0008); 1 for PNG/JPEG. Only the first frame of
            a multi-frame object is decoded (see :func:`decode_scan`).
        study_instance_uid: DICOM Study Instance UID (0020,000D); ``None`` for PNG/JPEG. With
            the series and instance UIDs below, what a DICOM SR or a FHIR ImagingStudy made of
            this scan's reading references (``services.dicom_sr``, ``services.fhir``).
        series_instance_uid: DICOM Series Instance UID (0020,000E).
        sop_instance_uid: DICOM SOP Instance UID (0008,0018).
        sop_class_uid: DICOM SOP Class UID (0008,0016), e.g. CR or DX Image Storage.
        patient_id: DICOM Patient ID (0010,0020) as the hospital wrote it, so that an SR sent
            back to its PACS is filed with the film's patient (never shown, never in FHIR).
        accession_number: DICOM Accession Number (0008,0050), the order the film answered.
        patient_orientation: DICOM Patient Orientation (0020,0020): the patient directions of
            the rows and columns, e.g. ``("L", "F")``; ``None`` unless the header gives both.
    """

    source_format: str
    width: int
    height: int
    modality: str | None = None
    photometric: str = "MONOCHROME2"
    study_date: date | None = None
    view_position: str | None = None
    body_part: str | None = None
    patient_sex: str | None = None
    patient_age: int | None = None
    pixel_spacing: tuple[float, float] | None = None
    bits: int = 8
    colorfulness: float = 0.0
    view: View | None = None
    patient_birth_year: int | None = None
    frames: int = 1
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None
    patient_id: str | None = None
    accession_number: str | None = None
    patient_orientation: tuple[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the metadata as JSON-safe values (ISO date string, list spacing, view name)."""
        out = asdict(self)
        out["view"] = self.view.value if self.view is not None else None
        out["study_date"] = self.study_date.isoformat() if self.study_date else None
        out["pixel_spacing"] = list(self.pixel_spacing) if self.pixel_spacing else None
        out["patient_orientation"] = (
            list(self.patient_orientation) if self.patient_orientation else None
        )
        return out

    def display_rows(self) -> list[tuple[str, str]]:
        """Return (plain label, value) pairs for showing to a user, skipping unknown values."""
        spacing = self.pixel_spacing
        rows = [
            ("File type", {"png": "PNG", "jpeg": "JPEG", "dicom": "DICOM"}[self.source_format]),
            ("Size", f"{self.width} x {self.height} pixels"),
            ("Modality", self.modality),
            ("Study date", self.study_date.isoformat() if self.study_date else None),
            ("View", VIEW_LABELS[self.view] if self.view is not None else self.view_position),
            ("Body part", self.body_part),
            ("Sex", self.patient_sex),
            ("Age", f"{self.patient_age} years" if self.patient_age is not None else None),
            ("Pixel spacing", f"{spacing[0]:g} x {spacing[1]:g} mm" if spacing else None),
            ("Pixel encoding", f"{self.photometric}, {self.bits} bits"),
            ("Images in the file", f"{self.frames}, the first shown" if self.frames > 1 else None),
        ]
        return [(label, value) for label, value in rows if value is not None]


@dataclass(frozen=True)
class DecodedScan:
    """A decoded radiograph.

    Attributes:
        pixels: float32 array (H, W) in ``[0, 1]``; bright means dense (bone white).
        metadata: What the file said about itself.
    """

    pixels: np.ndarray
    metadata: ScanMetadata

    @property
    def notes(self) -> tuple[str, ...]:
        """Sentences for the uploader about how the file was read (a multi-frame DICOM)."""
        if self.metadata.frames > 1:
            return (f"This file holds {self.metadata.frames} images; only the first one was read.",)
        return ()


# --------------------------------------------------------------------------- public API


def decode_scan(
    data: bytes, filename: str | None = None, *, max_bytes: int | None = None
) -> DecodedScan:
    """Decode an uploaded PNG, JPEG or DICOM into normalised grayscale pixels.

    The type is recognised by magic bytes: PNG signature, JPEG SOI marker, or
    ``DICM`` after the 128-byte DICOM preamble (files without it are refused,
    never force-read). Size limits are enforced from the header before the
    pixels are decoded.

    DICOM decodes in every transfer syntax a film arrives in: implicit and explicit VR
    little endian, explicit big endian, deflated, JPEG baseline and extended (8 and 12
    bit), JPEG Lossless (Process 14, any predictor, and SV1), JPEG-LS lossless and
    near-lossless, JPEG 2000 and HTJ2K lossless and lossy, and RLE lossless. The limits
    hold in each: the pixel cap and the compression ratio from the DICOM header, the size
    each compressed frame's own header declares (it must match Rows and Columns before
    anything is decoded), and the inflated size of a deflated dataset. A multi-frame object
    (Number of Frames (0028,0008) above 1) gives its first frame only, with
    ``metadata.frames`` and a note (:attr:`DecodedScan.notes`) saying so: a chest film is
    one image, and the frames of a multi-frame radiograph (dual-energy, tomosynthesis) are
    not separate films to score. A DICOM whose header says it is not a chest film (Body
    Part Examined names another part, or the object is a report or other non-image) is
    refused as such, with the part or kind named.

    Args:
        data: The file's bytes.
        filename: The name the user gave the file; informational only, since
            the type is read from the content.
        max_bytes: Largest accepted size; defaults to ``Settings.max_upload_bytes``.

    Returns:
        The pixels (float32, (H, W), ``[0, 1]``) and their metadata.

    Raises:
        ScanError: A subclass describing why the file cannot be used (empty,
            too large, not an image, too many or too few pixels, far more
            pixels than the file size can hold, damaged, not a chest X-ray,
            DICOM without pixels, colour DICOM, unreadable compression).
    """
    del filename  # Accepted for callers' convenience; the extension is never trusted.
    limit = load_settings().max_upload_bytes if max_bytes is None else max_bytes
    if not data:
        raise EmptyScan()
    if len(data) > limit:
        raise ScanTooLarge(
            f"This file is larger than the {_format_megabytes(limit)} limit for uploads."
        )
    if data.startswith(_PNG_MAGIC):
        return _decode_raster(data, "PNG")
    if data.startswith(_JPEG_MAGIC):
        return _decode_raster(data, "JPEG")
    if data[_DICOM_MAGIC_OFFSET : _DICOM_MAGIC_OFFSET + len(_DICOM_MAGIC)] == _DICOM_MAGIC:
        return _decode_dicom(data)
    raise UnsupportedFormat()


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Convert ``[0, 1]`` pixels to 8-bit for display or PNG export.

    Args:
        pixels: Float array, nominally in ``[0, 1]``; values outside are
            clipped and NaN becomes 0.

    Returns:
        uint8 array of the same shape.
    """
    values = np.nan_to_num(np.asarray(pixels, dtype=np.float32), nan=0.0)
    return np.clip(np.rint(values * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- PNG / JPEG


def _decode_raster(data: bytes, pillow_format: str) -> DecodedScan:
    with _decoder_errors():
        # Typed as a plain Image: exif_transpose below may return a new, non-file image.
        image: Image.Image = Image.open(io.BytesIO(data), formats=[pillow_format])
        _check_dimensions(*image.size)
        _check_compression_ratio(
            image.width * image.height * len(image.getbands()) * _bytes_per_sample(image.mode),
            len(data),
        )
        image.load()
        image = ImageOps.exif_transpose(image)
        mode = image.mode
        pixels, bits, colorfulness = _raster_to_gray(image)
    height, width = pixels.shape
    return DecodedScan(
        pixels=pixels,
        metadata=ScanMetadata(
            source_format="png" if pillow_format == "PNG" else "jpeg",
            width=width,
            height=height,
            photometric=mode,
            bits=bits,
            colorfulness=colorfulness,
        ),
    )


def _raster_to_gray(image: Image.Image) -> tuple[np.ndarray, int, float]:
    """Return (luminance in [0, 1], bits per sample, colorfulness) of a Pillow image."""
    mode = image.mode
    if mode.startswith("I"):
        # 16-bit PNGs carry no display window, and many use only 10-12 of their 16 bits,
        # so the stored range is stretched rather than divided by 65535.
        return _stretch(np.asarray(image, dtype=np.float32)), 16, 0.0
    if mode == "1":
        return np.asarray(image.convert("L"), dtype=np.float32) / 255.0, 1, 0.0
    if mode == "L":
        return np.asarray(image, dtype=np.float32) / 255.0, 8, 0.0
    if mode == "LA":
        gray_alpha = np.asarray(image, dtype=np.float32) / 255.0
        # Transparent areas are composited onto black, a radiograph's background.
        return gray_alpha[..., 0] * gray_alpha[..., 1], 8, 0.0
    # Contiguous uint8 bands: reductions across an interleaved last axis are ~10x slower.
    red, green, blue, alpha = (np.asarray(band) for band in image.convert("RGBA").split())
    luminance = (
        _LUMA_WEIGHTS[0] * red.astype(np.float32)
        + _LUMA_WEIGHTS[1] * green.astype(np.float32)
        + _LUMA_WEIGHTS[2] * blue.astype(np.float32)
    ) / 255.0
    chroma = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    chroma = chroma.astype(np.float32) / 255.0
    if alpha.min() < 255:
        # Transparent areas are composited onto black, a radiograph's background.
        opacity = alpha.astype(np.float32) / 255.0
        luminance *= opacity
        chroma *= opacity
    return np.clip(luminance, 0.0, 1.0), 8, float(chroma.mean())


# --------------------------------------------------------------------------- DICOM


def read_dicom_header(stream: BinaryIO) -> pydicom.Dataset:
    """Read a DICOM file's attributes up to its Pixel Data, without the pixels.

    For listing a CD or an archive without decoding every film. The same rules as
    :func:`decode_scan` apply: the 128-byte preamble and ``DICM`` are required, and a
    Deflated dataset is inflated in bounded steps first (see :func:`_check_inflation`), so
    the caller only needs to have bounded the file's size.

    Args:
        stream: The file, opened for reading in binary and seekable (a file, ``BytesIO`` or
            a ZIP member).

    Returns:
        The dataset with its File Meta group, read up to (not including) Pixel Data.

    Raises:
        UnsupportedFormat: Not a DICOM file (no ``DICM`` after the preamble).
        ScanTooLarge: A deflated dataset inflates beyond the decoder's limit.
        CorruptScan: The header cannot be parsed.
    """
    with _decoder_errors():
        magic = stream.read(_DICOM_MAGIC_OFFSET + len(_DICOM_MAGIC))
        if magic[_DICOM_MAGIC_OFFSET:] != _DICOM_MAGIC:
            raise UnsupportedFormat()
        stream.seek(0)
        if _file_meta(stream).get("TransferSyntaxUID") == uid.DeflatedExplicitVRLittleEndian:
            _check_inflation(stream.read())
        stream.seek(0)
        return pydicom.dcmread(stream, stop_before_pixels=True)


def _decode_dicom(data: bytes) -> DecodedScan:
    with _decoder_errors():
        dataset = _read_dicom(data)
        rows, columns = int(dataset.get("Rows") or 0), int(dataset.get("Columns") or 0)
        _check_dimensions(columns, rows)
        photometric = str(dataset.get("PhotometricInterpretation", "")).strip().upper()
        samples = int(dataset.get("SamplesPerPixel") or 1)
        if photometric not in _GRAY_PHOTOMETRICS or samples != 1:
            raise UnsupportedPhotometric()
        frames = int(dataset.get("NumberOfFrames") or 1)
        syntax = uid.UID(str(dataset.file_meta.get("TransferSyntaxUID", "")))
        if not (syntax.is_transfer_syntax and not syntax.is_compressed):
            # Uncompressed Pixel Data must hold every declared byte (pydicom checks its
            # length); compressed or unknown encodings are checked against the file size.
            bits = int(dataset.get("BitsAllocated") or 8)
            _check_compression_ratio(rows * columns * frames * samples * -(-bits // 8), len(data))
        stored = _dicom_stored_pixels(dataset, syntax, frames)
        pixels = _dicom_display_pixels(stored, dataset)
        if photometric == "MONOCHROME1":
            pixels = 1.0 - pixels
        metadata = ScanMetadata(
            source_format="dicom",
            width=columns,
            height=rows,
            modality=dicom_text(dataset, "Modality"),
            photometric=photometric,
            study_date=dicom_date(dataset.get("StudyDate")),
            view_position=dicom_text(dataset, "ViewPosition"),
            body_part=dicom_text(dataset, "BodyPartExamined"),
            patient_sex=dicom_text(dataset, "PatientSex"),
            patient_age=dicom_age(dataset.get("PatientAge")),
            pixel_spacing=_dicom_spacing(dataset),
            bits=int(dataset.get("BitsStored") or dataset.get("BitsAllocated") or 8),
            view=dicom_view(dataset),
            patient_birth_year=_dicom_year(dataset.get("PatientBirthDate")),
            frames=frames,
            study_instance_uid=dicom_text(dataset, "StudyInstanceUID"),
            series_instance_uid=dicom_text(dataset, "SeriesInstanceUID"),
            sop_instance_uid=dicom_text(dataset, "SOPInstanceUID"),
            sop_class_uid=dicom_text(dataset, "SOPClassUID"),
            patient_id=dicom_text(dataset, "PatientID"),
            accession_number=dicom_text(dataset, "AccessionNumber"),
            patient_orientation=dicom_orientation(dataset),
        )
    return DecodedScan(pixels=np.ascontiguousarray(pixels, dtype=np.float32), metadata=metadata)


def _read_dicom(data: bytes) -> pydicom.Dataset:
    """Parse a DICOM file (preamble required, never ``force``), refusing truncated ones and
    those whose header says they are not a chest film.

    pydicom reads a file cut inside encapsulated Pixel Data without raising: it
    warns and drops the element. So when the element is missing although its
    tag is in the bytes, the file was cut short (checked structurally rather
    than by catching warnings, which is not thread-safe under Streamlit).
    """
    _check_inflated_size(data)
    dataset = pydicom.dcmread(io.BytesIO(data))
    has_pixels = "PixelData" in dataset
    if has_pixels or _PIXEL_DATA_TAG not in data:
        reason = out_of_scope(dataset, has_pixels=has_pixels)
        if reason is not None:
            raise NotChestRadiograph(reason.sentence)
    if not has_pixels:
        if _PIXEL_DATA_TAG in data:
            raise CorruptScan()
        raise NoPixelData()
    return dataset


def _file_meta(stream: BinaryIO) -> pydicom.Dataset:
    """The File Meta group (0002,xxxx) of a DICOM file, leaving ``stream`` just after it."""
    read_preamble(stream, False)
    return read_dataset(
        stream,
        is_implicit_VR=False,
        is_little_endian=True,
        stop_when=lambda tag, *_: tag >> 16 != 2,
    )


def _check_inflated_size(data: bytes) -> None:
    """Refuse a Deflated DICOM whose dataset inflates beyond :data:`_MAX_INFLATED_BYTES`."""
    stream = io.BytesIO(data)
    if _file_meta(stream).get("TransferSyntaxUID") == uid.DeflatedExplicitVRLittleEndian:
        _check_inflation(data[stream.tell() :])


def _check_inflation(deflated: bytes) -> None:
    """Inflate a deflated dataset in bounded steps, discarding the output, to measure it.

    A deflate bomb thus costs at most the limit in CPU and one step in memory before
    pydicom (which inflates without any bound) is allowed to inflate it for real.

    Raises:
        ScanTooLarge: The inflated dataset exceeds :data:`_MAX_INFLATED_BYTES`.
    """
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pending = deflated
    inflated = 0
    while pending and not inflater.eof:
        inflated += len(inflater.decompress(pending, _INFLATE_STEP))
        if inflated > _MAX_INFLATED_BYTES:
            raise ScanTooLarge("This DICOM file unpacks to more data than the app accepts.")
        pending = inflater.unconsumed_tail


def _dicom_stored_pixels(dataset: pydicom.Dataset, syntax: uid.UID, frames: int) -> np.ndarray:
    """Decode the first frame of Pixel Data (7FE0,0010) with the syntax's one decoder."""
    try:
        plugins = get_decoder(syntax).available_plugins
    except NotImplementedError as exc:
        # pydicom knows no decoder at all for this transfer syntax.
        raise UnsupportedCompression() from exc
    plugin = _DECODING_PLUGINS.get(syntax, "")
    if syntax.is_compressed and plugin not in plugins:
        raise UnsupportedCompression()
    if syntax in _JPEG_SYNTAXES or syntax in _J2K_SYNTAXES:
        _check_frame_header(dataset, syntax, frames)
    stored = pixel_array(dataset, index=0, decoding_plugin=plugin)
    if stored.shape != (int(dataset.Rows), int(dataset.Columns)):
        raise CorruptScan()
    return stored


def _check_frame_header(dataset: pydicom.Dataset, syntax: uid.UID, frames: int) -> None:
    """Refuse a compressed frame whose own header declares another size than the DICOM's.

    JPEG, JPEG-LS and JPEG 2000 decoders allocate what the codestream declares, not what
    Rows (0028,0010) and Columns (0028,0011) say, so a 100-byte frame could otherwise make
    them allocate gigabytes.

    Raises:
        CorruptScan: The frame's header cannot be read or declares another size or more
            than one component.
    """
    frame = get_frame(dataset.PixelData, 0, number_of_frames=frames)
    parse = _jpeg_frame_size if syntax in _JPEG_SYNTAXES else _j2k_frame_size
    if parse(frame) != (int(dataset.Rows), int(dataset.Columns), 1):
        raise CorruptScan()


def _jpeg_frame_size(frame: bytes) -> tuple[int, int, int] | None:
    """(rows, columns, components) from a JPEG or JPEG-LS start-of-frame segment."""
    if not frame.startswith(b"\xff\xd8"):
        return None
    offset = 2
    while offset + 4 <= len(frame) and frame[offset] == 0xFF:
        marker = frame[offset + 1]
        if marker == 0xFF:  # a fill byte before the marker
            offset += 1
        elif marker in _STANDALONE_MARKERS:
            offset += 2
        elif marker in _SOF_MARKERS:
            if offset + 10 > len(frame):
                return None
            rows, columns = struct.unpack(">HH", frame[offset + 5 : offset + 9])
            return rows, columns, frame[offset + 9]
        else:
            offset += 2 + struct.unpack(">H", frame[offset + 2 : offset + 4])[0]
    return None


def _j2k_frame_size(frame: bytes) -> tuple[int, int, int] | None:
    """(rows, columns, components) from a JPEG 2000 SIZ segment (ITU T.800 A.5.1).

    A codestream wrapped in a JP2 file (which some writers put in DICOM) is found in its
    contiguous codestream box.
    """
    start = 0
    if frame.startswith(_JP2_SIGNATURE):
        start = frame.find(b"jp2c") + 4
        if start < 4:
            return None
    siz = frame[start : start + 42]
    if len(siz) < 42 or siz[:4] != b"\xff\x4f\xff\x51":
        return None
    width, height, x_offset, y_offset = struct.unpack(">IIII", siz[8:24])
    components = struct.unpack(">H", siz[40:42])[0]
    return height - y_offset, width - x_offset, components


def _dicom_display_pixels(stored: np.ndarray, dataset: pydicom.Dataset) -> np.ndarray:
    """Apply the Modality LUT, then the VOI LUT or window, and scale to [0, 1]."""
    modality = np.asarray(apply_modality_lut(stored, dataset))
    if "VOILUTSequence" in dataset and len(dataset.VOILUTSequence):
        # A LUT is indexed by integers; a rescaled (float) modality output is rounded first.
        lut_input = np.rint(modality).astype(np.int64) if modality.dtype.kind == "f" else modality
        lut_values = np.asarray(dataset.VOILUTSequence[0].LUTData, dtype=np.float64)
        mapped = np.asarray(apply_voi_lut(lut_input, dataset, prefer_lut=True), dtype=np.float64)
        low, high = float(lut_values.min()), float(lut_values.max())
        if high <= low:
            return np.zeros_like(mapped, dtype=np.float32)
        return np.clip((mapped - low) / (high - low), 0.0, 1.0).astype(np.float32)
    values = modality.astype(np.float64)
    window = _dicom_window(dataset)
    if window is not None:
        return _apply_window(values, *window, str(dataset.get("VOILUTFunction", "LINEAR")))
    return _stretch(values)


def _dicom_window(dataset: pydicom.Dataset) -> tuple[float, float] | None:
    """First Window Center (0028,1050) and Width (0028,1051), if usable."""
    center, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if center is None or width is None:
        return None
    center = center[0] if isinstance(center, pydicom.multival.MultiValue) else center
    width = width[0] if isinstance(width, pydicom.multival.MultiValue) else width
    try:
        center, width = float(center), float(width)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(center) and np.isfinite(width)) or width <= 0:
        return None
    return center, width


def _apply_window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """Map values to [0, 1] by the VOI LUT Function (0028,1056), per DICOM PS3.3 C.11.2.1."""
    function = function.strip().upper()
    if function == "SIGMOID":
        out = 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    elif function == "LINEAR_EXACT":
        out = (values - center) / width + 0.5
    elif width > 1.0:
        # LINEAR, with the standard's half-unit offsets for integer stored values.
        out = (values - (center - 0.5)) / (width - 1.0) + 0.5
    else:
        out = (values >= center).astype(np.float64)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _dicom_year(value: Any) -> int | None:
    """The year of a DICOM DA value; invalid dates give ``None``."""
    day = dicom_date(value)
    return None if day is None else day.year


def _dicom_spacing(dataset: pydicom.Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = dataset.get(keyword)
        try:
            row, column = (float(v) for v in value)
        except (TypeError, ValueError):
            continue
        if row > 0 and column > 0:
            return row, column
    return None


# --------------------------------------------------------------------------- helpers


def _check_dimensions(width: int, height: int) -> None:
    """Refuse images outside the size limits, from header values, before decoding."""
    if width * height > MAX_PIXELS:
        raise TooManyPixels()
    if min(width, height) < MIN_SIDE:
        raise ImageTooSmall()


def _check_compression_ratio(declared_bytes: int, file_bytes: int) -> None:
    """Refuse a header that declares far more pixel data than its file can plausibly hold.

    Args:
        declared_bytes: Width x height x frames x samples x bytes per sample, from the header.
        file_bytes: Size of the uploaded file.

    Raises:
        ExcessiveCompression: The ratio exceeds :data:`MAX_COMPRESSION_RATIO`.
    """
    if declared_bytes > _RATIO_CHECK_FLOOR and declared_bytes > MAX_COMPRESSION_RATIO * file_bytes:
        raise ExcessiveCompression()


def _bytes_per_sample(mode: str) -> int:
    """Bytes of one band of one pixel in a Pillow mode (``'1'`` is counted as a byte)."""
    if mode.startswith("I;16"):
        return 2
    return 4 if mode in {"I", "F"} else 1


def _stretch(values: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1]; a constant image becomes all zeros."""
    low, high = float(np.min(values)), float(np.max(values))
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        return np.zeros(values.shape, dtype=np.float32)
    return ((values - low) / (high - low)).astype(np.float32)


@contextlib.contextmanager
def _decoder_errors() -> Iterator[None]:
    """Turn whatever Pillow, pydicom or numpy raise on bad input into a :class:`ScanError`.

    Third-party decoders raise a wide, undocumented variety of exceptions on
    malformed files (OSError, SyntaxError, struct.error, KeyError, ...), so
    everything that is not already a ScanError becomes :class:`CorruptScan`.
    The decompression-bomb warning is escalated to an error here, so a
    header over the limit never decodes; :func:`_check_dimensions` repeats the
    check right after ``Image.open`` in case another thread changed the
    warning filters meanwhile (``warnings.catch_warnings`` is process-wide).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ScanError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooManyPixels() from exc
    except MemoryError as exc:
        raise TooManyPixels() from exc
    except Exception as exc:  # See docstring: any decoder failure is bad input.
        raise CorruptScan() from exc


def _format_megabytes(num_bytes: int) -> str:
    megabytes = num_bytes / (1024 * 1024)
    return f"{megabytes:g} MB" if megabytes >= 1 else f"{num_bytes} byte"


# --------------------------------------------------------------------------- command line


def _check_file(path: Path, save_dir: Path | None, max_bytes: int) -> dict[str, Any]:
    """Decode one file for the command line; never raises for a bad file."""
    row: dict[str, Any] = {
        "file": str(path),
        "ok": False,
        "width": None,
        "height": None,
        "modality": None,
        "photometric": None,
        "study_date": None,
        "view": None,
        "error": None,
    }
    try:
        if path.stat().st_size > max_bytes:
            # Checked before reading so that a huge file is never loaded into memory.
            raise ScanTooLarge(
                f"This file is larger than the {_format_megabytes(max_bytes)} limit for uploads."
            )
        scan = decode_scan(path.read_bytes(), path.name, max_bytes=max_bytes)
    except ScanError as exc:
        row["error"] = str(exc)
        return row
    except FileNotFoundError:
        row["error"] = "This file does not exist."
        return row
    except OSError:
        row["error"] = "This file could not be opened."
        return row
    meta = scan.metadata
    row.update(
        ok=True,
        width=meta.width,
        height=meta.height,
        modality=meta.modality,
        photometric=meta.photometric,
        study_date=meta.study_date.isoformat() if meta.study_date else None,
        view=meta.view.value if meta.view is not None else None,
    )
    if save_dir is not None:
        Image.fromarray(to_uint8(scan.pixels)).save(_png_target(save_dir, path))
    return row


def _png_target(save_dir: Path, source: Path) -> Path:
    """Where ``--save-png`` writes ``source``: directly inside ``save_dir``, whatever the name.

    Only the base name is used, with every character outside ``[A-Za-z0-9._-]``
    replaced and leading dots dropped, so a file name can neither leave the
    folder nor create a hidden file; a symbolic link already at the target is
    removed rather than followed.
    """
    save_dir.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", source.name).lstrip(".") or "scan"
    target = save_dir / f"{stem}.png"
    if target.is_symlink():
        target.unlink()
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Decode files given on the command line and print one JSON line per file.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        0 when every file decoded, 2 when any failed.
    """
    parser = argparse.ArgumentParser(
        prog="python -m core.imaging",
        description="Decode chest radiographs (PNG, JPEG, DICOM) and report what was found.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="files to decode")
    parser.add_argument(
        "--save-png", type=Path, metavar="DIR", help="write each decoded image as DIR/<name>.png"
    )
    args = parser.parse_args(argv)
    max_bytes = load_settings().max_upload_bytes
    all_ok = True
    for path in args.files:
        row = _check_file(path, args.save_png, max_bytes)
        all_ok &= row["ok"]
        sys.stdout.write(json.dumps(row) + "\n")
    return 0 if all_ok else 2


if __name__ == "__main__":
    sys.exit(main())
