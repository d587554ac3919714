"""Benchmark: decoding plus default enhancement of typical uploads.

Cases: a 512x512 NIH PNG from the shared samples, the same upscaled to 1024x1024, a 3000x3000
16-bit PNG generated in a temporary folder, and the real CR DICOM sample (JPEG baseline).
Then decoding alone of a 2048 x 2500 CR film in every DICOM transfer syntax a film arrives in:
the real PA chest of ``external/dicom_codecs/RG1_JLSN.dcm`` upscaled (a smooth synthetic film
where the shared data is absent), 12 bits stored (8 for JPEG baseline), encoded by
``tests.dicom_files``. Prints the median of several runs per step as a table; no assertions.

Run: ``.venv/bin/python benchmarks/bench_imaging.py``
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom import uid
from scipy.ndimage import zoom

if __package__ in (None, ""):
    # Run as a script: make the project importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._timing import median_seconds
from core.enhance import EnhanceSettings, enhance
from core.imaging import decode_scan
from core.settings import load_settings
from tests.dicom_files import film_bytes

_REPEATS = 5
_NIH_PNG = "00000001_000.png"
_DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
_LARGE_SIDE = 3000
#: A 14 x 17 inch CR cassette read at about 0.17 mm: rows x columns.
_FILM_SHAPE = (2500, 2048)
_REAL_FILM = Path("external") / "dicom_codecs" / "RG1_JLSN.dcm"
#: (label, transfer syntax, encoder options) of every syntax timed on the film.
_SYNTAXES = [
    ("explicit VR little endian", uid.ExplicitVRLittleEndian, {}),
    ("implicit VR little endian", uid.ImplicitVRLittleEndian, {}),
    ("explicit VR big endian", uid.ExplicitVRBigEndian, {}),
    ("deflated", uid.DeflatedExplicitVRLittleEndian, {}),
    ("RLE lossless", uid.RLELossless, {}),
    ("JPEG Lossless SV1", uid.JPEGLosslessSV1, {}),
    ("JPEG Lossless Process 14, predictor 6", uid.JPEGLossless, {"predictor": 6}),
    ("JPEG-LS lossless", uid.JPEGLSLossless, {}),
    ("JPEG-LS near-lossless (NEAR 3)", uid.JPEGLSNearLossless, {"jls_error": 3}),
    ("JPEG 2000 lossless", uid.JPEG2000Lossless, {}),
    ("JPEG 2000 lossy (10:1)", uid.JPEG2000, {"j2k_cr": [10]}),
    ("JPEG Extended 12-bit", uid.JPEGExtended12Bit, {"quantizer": 4}),
    ("JPEG baseline 8-bit", uid.JPEGBaseline8Bit, {"quality": 90}),
]


def _large_16_bit_png(folder: Path) -> bytes:
    """A smooth 12-bit-in-16 image with noise, like an exported detector image."""
    rows, cols = np.mgrid[0:_LARGE_SIDE, 0:_LARGE_SIDE].astype(np.float32) / _LARGE_SIDE
    noise = np.random.default_rng(0).normal(0, 0.02, rows.shape)
    pixels = np.clip((0.5 + 0.3 * np.sin(6 * rows) * np.cos(4 * cols) + noise) * 4095, 0, 4095)
    path = folder / "large16.png"
    Image.fromarray(pixels.astype(np.uint16)).save(path)
    return path.read_bytes()


def _upscaled_png(source: Path, side: int = 1024) -> bytes:
    """The NIH sample (512x512 in this copy) resized to ``side`` pixels.

    A real radiograph at upload size.
    """
    buffer = io.BytesIO()
    Image.open(source).resize((side, side), Image.Resampling.BICUBIC).save(buffer, format="PNG")
    return buffer.getvalue()


def _cases(folder: Path) -> list[tuple[str, bytes]]:
    samples = load_settings().shared_data_dir / "samples"
    cases = [(f"{_LARGE_SIDE}x{_LARGE_SIDE} 16-bit PNG (generated)", _large_16_bit_png(folder))]
    if (samples / _NIH_PNG).is_file():
        cases.insert(
            0, ("1024x1024 8-bit PNG (NIH sample upscaled)", _upscaled_png(samples / _NIH_PNG))
        )
    for label, name in (("NIH PNG 8-bit (sample)", _NIH_PNG), ("CR DICOM, JPEG (sample)", _DICOM)):
        if (samples / name).is_file():
            cases.insert(len(cases) - 1, (label, (samples / name).read_bytes()))
    return cases


def cr_film() -> tuple[np.ndarray, str]:
    """The 2048 x 2500 film's stored values (12 bits) and where they come from."""
    path = load_settings().shared_data_dir / _REAL_FILM
    if path.is_file():
        stored = pydicom.dcmread(path).pixel_array.astype(np.float32)
        scale = (_FILM_SHAPE[0] / stored.shape[0], _FILM_SHAPE[1] / stored.shape[1])
        # Upscaling smooths the film; detector noise puts back what a real CR plate holds.
        film = zoom(stored, scale, order=1) / 8 + np.random.default_rng(0).normal(0, 8, _FILM_SHAPE)
        source = "real chest CR RG1 upscaled"
    else:
        rows, cols = np.mgrid[0 : _FILM_SHAPE[0], 0 : _FILM_SHAPE[1]] / _FILM_SHAPE[1]
        film = 2048 + 1200 * np.sin(5 * rows) * np.cos(3 * cols)
        source = "synthetic"
    return np.clip(np.rint(film), 0, 4095).astype(np.uint16), source


def syntax_rows(repeats: int = _REPEATS) -> list[dict]:
    """Median decoding time of the 2048 x 2500 film in each transfer syntax.

    Args:
        repeats: Timed runs per syntax.

    Returns:
        Rows ``{"benchmark", "value", "unit"}`` (median milliseconds), the file size in the
        label.
    """
    film, source = cr_film()
    rows = []
    for label, syntax, options in _SYNTAXES:
        bits = 8 if syntax == uid.JPEGBaseline8Bit else 12
        pixels = (film >> 4).astype(np.uint8) if bits == 8 else film
        data = film_bytes(pixels, syntax, bits_stored=bits, encode=options)
        seconds = median_seconds(lambda data=data: decode_scan(data), repeats)
        size = f"{_FILM_SHAPE[1]}x{_FILM_SHAPE[0]}, {len(data) / 1e6:.1f} MB"
        rows.append(
            {
                "benchmark": f"imaging: decode DICOM {label} ({source}, {size})",
                "value": round(seconds * 1000, 1),
                "unit": "ms",
            }
        )
    return rows


def run() -> list[dict]:
    """Time decoding and default enhancement of each case.

    Returns:
        Rows ``{"benchmark", "value", "unit"}`` (median milliseconds), for
        ``benchmarks/run_all.py``: decoding per transfer syntax first, then
        decoding and enhancement per upload. Sample cases are left out where
        the shared data folder is absent.
    """
    settings = EnhanceSettings()
    rows = syntax_rows()
    with tempfile.TemporaryDirectory() as tmp:
        for label, data in _cases(Path(tmp)):
            scan = decode_scan(data)
            size = f"{scan.metadata.width}x{scan.metadata.height}"
            decode_s = median_seconds(lambda data=data: decode_scan(data), _REPEATS)
            enhance_s = median_seconds(
                lambda pixels=scan.pixels: enhance(pixels, settings), _REPEATS
            )
            for step, seconds in (("decode", decode_s), ("default enhance", enhance_s)):
                rows.append(
                    {
                        "benchmark": f"imaging: {step}, {label}, {size}",
                        "value": round(seconds * 1000, 1),
                        "unit": "ms",
                    }
                )
    return rows


if __name__ == "__main__":
    from run_all import format_table

    print(format_table([row | {"module": Path(__file__).stem} for row in run()]))
