"""DICOM files built in code for tests and benchmarks: a film in any transfer syntax, a
DICOMDIR with its folder, a ZIP of a folder.

pydicom encodes RLE, JPEG-LS (pyjpegls) and JPEG 2000 (pylibjpeg-openjpeg), and Pillow 8-bit
baseline JPEG. No installed package encodes JPEG Lossless (Process 14) or 12-bit JPEG
Extended, the two most common syntaxes on PACS and patient CDs after those, so this module
has a small encoder for each (ITU T.81 Annexes F and H: one component, one scan, Huffman
tables with fixed code lengths). They are written for clarity and correctness, not size.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.fileset import FileSet
from pydicom.uid import (
    UID,
    BasicTextSRStorage,
    ComputedRadiographyImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    generate_uid,
)
from scipy.fft import dctn

#: Syntaxes whose Pixel Data is stored as it is (only the byte order or the dataset's
#: deflation differ).
NATIVE_SYNTAXES = (
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
)

# ----------------------------------------------------------------------- films


def new_dataset(
    sop_class: str,
    transfer_syntax: str = ExplicitVRLittleEndian,
    *,
    preamble: bool = True,
) -> FileDataset:
    """An empty instance of ``sop_class``: File Meta (a new SOP Instance UID, the syntax) and
    the SOP Class and Instance UIDs, nothing else. Every builder here and in the tests starts
    from it.

    Args:
        sop_class: The SOP Class UID (``ComputedRadiographyImageStorage``...).
        transfer_syntax: The File Meta's Transfer Syntax UID.
        preamble: Give the file its 128-byte preamble (``False``: a file without one, which
            :func:`to_bytes` then writes with ``enforce_file_format=False``).
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    dataset = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128 if preamble else None)
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    return dataset


def film_dataset(
    pixels: np.ndarray,
    transfer_syntax: str = ExplicitVRLittleEndian,
    *,
    bits_stored: int = 12,
    encode: dict[str, Any] | None = None,
    **attributes: Any,
) -> FileDataset:
    """A CR chest film holding ``pixels``, its Pixel Data in ``transfer_syntax``.

    Args:
        pixels: Unsigned stored values, (rows, columns) or (frames, rows, columns); uint8 for
            8-bit JPEG baseline, else uint16.
        transfer_syntax: Any syntax :mod:`core.imaging` decodes but HTJ2K (no encoder).
        bits_stored: Bits Stored (0028,0101); Bits Allocated follows the array's dtype.
        encode: Options for the encoder: ``predictor`` (JPEG Lossless Process 14, 1-7),
            ``quantizer`` (JPEG Extended, a step for every coefficient), ``quality`` (JPEG
            baseline), or pydicom's (``jls_error``, ``j2k_cr``...).
        **attributes: More attributes by keyword (``BodyPartExamined="HIP"``); they
            override the defaults (a PA chest CR of a made-up patient).

    Returns:
        The dataset, with File Meta and preamble, ready for :func:`to_bytes` or a FileSet.
    """
    options = dict(encode or {})
    frames = pixels if pixels.ndim == 3 else pixels[np.newaxis]
    dataset = new_dataset(ComputedRadiographyImageStorage)
    meta = dataset.file_meta
    dataset.Modality = "CR"
    dataset.BodyPartExamined = "CHEST"
    dataset.ViewPosition = "PA"
    dataset.PatientID = "TEST-1"
    dataset.PatientName = "Test^Patient"
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.StudyDate = "20240105"
    # What a DICOMDIR's STUDY, SERIES and IMAGE records need (PS3.3 F.5).
    dataset.StudyTime = "101500"
    dataset.StudyID = "1"
    dataset.SeriesNumber = 1
    dataset.InstanceNumber = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.SamplesPerPixel = 1
    dataset.Rows, dataset.Columns = frames.shape[1:]
    if pixels.ndim == 3:
        dataset.NumberOfFrames = frames.shape[0]
    dataset.BitsAllocated = 8 * frames.dtype.itemsize
    dataset.BitsStored = bits_stored
    dataset.HighBit = bits_stored - 1
    dataset.PixelRepresentation = 0
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    syntax = UID(transfer_syntax)
    if syntax in NATIVE_SYNTAXES:
        order = ">" if syntax == ExplicitVRBigEndian else "<"
        dataset.PixelData = frames.astype(frames.dtype.newbyteorder(order)).tobytes()
        dataset["PixelData"].VR = "OB" if frames.dtype.itemsize == 1 else "OW"
        meta.TransferSyntaxUID = syntax
    elif syntax in _CODESTREAM_ENCODERS:
        encoder = _CODESTREAM_ENCODERS[syntax]
        dataset.PixelData = encapsulate([encoder(frame, bits_stored, options) for frame in frames])
        dataset["PixelData"].VR = "OB"
        meta.TransferSyntaxUID = syntax
    else:
        dataset.compress(syntax, pixels, generate_instance_uid=False, **options)
    return dataset


def report_dataset(**attributes: Any) -> FileDataset:
    """A Basic Text SR (a structured report: no image), with what a DICOMDIR record needs."""
    dataset = new_dataset(BasicTextSRStorage)
    dataset.Modality = "SR"
    dataset.PatientID, dataset.PatientName = "TEST-1", "Test^Patient"
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.StudyDate, dataset.StudyTime, dataset.StudyID = "20240105", "101500", "1"
    dataset.SeriesNumber, dataset.InstanceNumber = 99, 1
    dataset.CompletionFlag, dataset.VerificationFlag = "COMPLETE", "UNVERIFIED"
    dataset.ContentDate, dataset.ContentTime = "20240105", "103000"
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator = "18748-4", "LN"
    concept.CodeMeaning = "Diagnostic imaging report"
    dataset.ConceptNameCodeSequence = [concept]
    for keyword, value in attributes.items():
        setattr(dataset, keyword, value)
    return dataset


def to_bytes(dataset: Dataset, *, enforce_file_format: bool = True) -> bytes:
    """The dataset as a DICOM Part 10 file (``enforce_file_format=False``: as it is, e.g.
    without a preamble)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=enforce_file_format)
    return buffer.getvalue()


def film_bytes(
    pixels: np.ndarray, transfer_syntax: str = ExplicitVRLittleEndian, **kw: Any
) -> bytes:
    """:func:`film_dataset` written as a file."""
    return to_bytes(film_dataset(pixels, transfer_syntax, **kw))


# ----------------------------------------------------------------------- file sets


def write_file_set(folder: Path, datasets: Iterable[Dataset]) -> Path:
    """Write ``datasets`` as a DICOM File-set (DICOMDIR and its files) into ``folder``.

    pydicom's FileSet names the files as a CD writer does (``PT000000/ST000000/SE000000/
    IM000000``).

    Returns:
        The DICOMDIR's path.
    """
    file_set = FileSet()
    for dataset in datasets:
        file_set.add(dataset)
    file_set.write(folder)
    return folder / "DICOMDIR"


def zip_folder(folder: Path, target: Path, *, prefix: str = "") -> Path:
    """Zip every file under ``folder`` into ``target``, names relative to it after ``prefix``."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    return target


# ----------------------------------------------------------------------- JPEG encoders


def jpeg_lossless(frame: np.ndarray, precision: int, predictor: int = 1) -> bytes:
    """A JPEG Lossless (Process 14) codestream of one 2-D frame (ITU T.81 Annex H).

    Args:
        frame: Unsigned values below ``2 ** precision``.
        precision: Sample precision P, 2 to 16.
        predictor: Selection value 1-7 (1 is the SV1 syntax's only one).

    Returns:
        SOI, SOF3, DHT, SOS, the scan and EOI.
    """
    x = frame.astype(np.int64)
    ra = np.roll(x, 1, axis=1)
    rb = np.roll(x, 1, axis=0)
    rc = np.roll(rb, 1, axis=1)
    prediction = {
        1: ra,
        2: rb,
        3: rc,
        4: ra + rb - rc,
        5: ra + ((rb - rc) >> 1),
        6: rb + ((ra - rc) >> 1),
        7: (ra + rb) >> 1,
    }[predictor]
    # H.1.2.1: the first row predicts from the left, the first column from above, and the
    # first sample from half the range.
    prediction[0, :] = ra[0, :]
    prediction[:, 0] = rb[:, 0]
    prediction[0, 0] = 1 << (precision - 1)
    difference = (x - prediction) % 65536
    difference = np.where(difference >= 32768, difference - 65536, difference).ravel()
    category = _categories(difference)
    # SSSS 16 (a difference of 32768) carries no extra bits (H.1.2.2).
    extra_length = np.where(category == 16, 0, category)
    table = _fixed_table(17, 5)
    codes, lengths = _with_extra_bits(table, category, difference, extra_length)
    header = (
        _segment(0xC3, bytes([precision]) + _u16(*frame.shape) + bytes([1, 1, 0x11, 0]))
        + _dht(0x00, table)
        + _segment(0xDA, bytes([1, 1, 0x00, predictor, 0, 0]))
    )
    return b"\xff\xd8" + header + _pack_bits(codes, lengths) + b"\xff\xd9"


def jpeg_extended(frame: np.ndarray, precision: int = 12, quantizer: int = 2) -> bytes:
    """A sequential DCT JPEG codestream (SOF1, Process 2 and 4) of one 2-D frame.

    Args:
        frame: Unsigned values below ``2 ** precision``.
        precision: 8 or 12.
        quantizer: The quantisation step of every coefficient (1-255): 1 is nearly exact,
            larger steps lose more.

    Returns:
        SOI, DQT, SOF1, two DHT, SOS, the scan and EOI.
    """
    rows, columns = frame.shape
    padded = np.pad(frame.astype(np.float64), ((0, -rows % 8), (0, -columns % 8)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // 8, 8, padded.shape[1] // 8, 8).swapaxes(1, 2)
    blocks = blocks.reshape(-1, 8, 8) - (1 << (precision - 1))
    coefficients = np.rint(dctn(blocks, axes=(1, 2), norm="ortho") / quantizer).astype(np.int64)
    zigzag = coefficients.reshape(-1, 64)[:, _ZIGZAG]
    # AC symbols are RRRRSSSS; 0xFF (a run of 15 then a magnitude of 2**14) never occurs
    # with a step of 2 or more, and would be the forbidden all-ones code.
    dc_table, ac_table = _fixed_table(16, 5), _fixed_table(255, 8)
    dc_difference = np.diff(zigzag[:, 0], prepend=0)
    symbols: list[tuple[int, int, int]] = []  # (table 0 DC / 1 AC, symbol, value)
    for block, dc in zip(zigzag[:, 1:], dc_difference, strict=True):
        symbols.append((0, int(_categories(np.array([dc]))[0]), int(dc)))
        run = 0
        for value in block.tolist():
            if value == 0:
                run += 1
                continue
            while run > 15:
                symbols.append((1, 0xF0, 0))
                run -= 16
            size = int(value).bit_length() if value > 0 else int(-value).bit_length()
            symbols.append((1, run << 4 | size, value))
            run = 0
        if run:
            symbols.append((1, 0x00, 0))
    kinds, symbol, value = (
        np.array(column, dtype=np.int64) for column in zip(*symbols, strict=True)
    )
    size = np.where(kinds == 0, symbol, symbol & 0x0F)
    dc_codes, dc_lengths = _with_extra_bits(dc_table, symbol, value, size)
    ac_codes, ac_lengths = _with_extra_bits(ac_table, symbol, value, size)
    codes = np.where(kinds == 0, dc_codes, ac_codes)
    lengths = np.where(kinds == 0, dc_lengths, ac_lengths)
    header = (
        _segment(0xDB, bytes([0x00]) + bytes([quantizer] * 64))
        + _segment(0xC1, bytes([precision]) + _u16(rows, columns) + bytes([1, 1, 0x11, 0]))
        + _dht(0x00, dc_table)
        + _dht(0x10, ac_table)
        + _segment(0xDA, bytes([1, 1, 0x00, 0, 63, 0]))
    )
    return b"\xff\xd8" + header + _pack_bits(codes, lengths) + b"\xff\xd9"


def _encode_lossless(frame: np.ndarray, bits: int, options: dict[str, Any]) -> bytes:
    return jpeg_lossless(frame, bits, options.get("predictor", 1))


def _encode_lossless_sv1(frame: np.ndarray, bits: int, options: dict[str, Any]) -> bytes:
    return jpeg_lossless(frame, bits, 1)


def _encode_extended(frame: np.ndarray, bits: int, options: dict[str, Any]) -> bytes:
    return jpeg_extended(frame, bits, options.get("quantizer", 2))


def _encode_baseline(frame: np.ndarray, bits: int, options: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame.astype(np.uint8)).save(
        buffer, format="JPEG", quality=options.get("quality", 95)
    )
    return buffer.getvalue()


_CODESTREAM_ENCODERS = {
    JPEGLossless: _encode_lossless,
    JPEGLosslessSV1: _encode_lossless_sv1,
    JPEGExtended12Bit: _encode_extended,
    JPEGBaseline8Bit: _encode_baseline,
}

#: Zigzag order of the 64 coefficients of a block (T.81 Figure A.6), as row-major indices.
_ZIGZAG = np.array(
    sorted(range(64), key=lambda i: (i // 8 + i % 8, (i // 8) if (i // 8 + i % 8) % 2 else (i % 8)))
)


def _categories(values: np.ndarray) -> np.ndarray:
    """SSSS of each value: the bit length of its magnitude (T.81 Tables F.1 and H.2)."""
    magnitude = np.abs(values)
    return np.where(magnitude == 0, 0, np.floor(np.log2(np.maximum(magnitude, 1))) + 1).astype(
        np.int64
    )


def _fixed_table(symbols: int, length: int) -> tuple[int, int]:
    """A Huffman table giving each of ``symbols`` (0 .. symbols-1) a code of ``length`` bits
    (the codes are then the symbols themselves, and none is all ones)."""
    assert symbols < 1 << length
    return symbols, length


def _with_extra_bits(
    table: tuple[int, int], symbol: np.ndarray, value: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each symbol's code followed by ``size`` extra bits of ``value`` (T.81 F.1.2.1)."""
    _, code_length = table
    extra = np.where(value < 0, value - 1, value) & ((1 << size) - 1)
    return (symbol << size) | extra, code_length + size


def _dht(class_and_id: int, table: tuple[int, int]) -> bytes:
    symbols, length = table
    counts = [symbols if bits == length else 0 for bits in range(1, 17)]
    return _segment(0xC4, bytes([class_and_id]) + bytes(counts) + bytes(range(symbols)))


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + _u16(len(body) + 2) + body


def _u16(*values: int) -> bytes:
    return b"".join(int(value).to_bytes(2, "big") for value in values)


def _pack_bits(codes: np.ndarray, lengths: np.ndarray) -> bytes:
    """Concatenate variable-length codes MSB first, pad with ones, stuff 0x00 after 0xFF."""
    chunks = []
    step = 1 << 18  # bounded memory for a 2k x 2.5k film
    for start in range(0, len(codes), step):
        code, length = codes[start : start + step], lengths[start : start + step]
        shift = length[:, None] - 1 - np.arange(int(length.max(initial=1)))[None, :]
        valid = shift >= 0
        chunks.append(((code[:, None] >> np.where(valid, shift, 0)) & 1)[valid].astype(np.uint8))
    bits = np.concatenate([*chunks, np.ones(-sum(map(len, chunks)) % 8, np.uint8)])
    packed = np.packbits(bits)
    return np.insert(packed, np.flatnonzero(packed == 0xFF) + 1, 0).tobytes()
