"""Benchmark: decoding plus default enhancement of typical uploads.

Cases: a 512x512 NIH PNG from the shared samples, the same upscaled to 1024x1024, a 3000x3000
16-bit PNG generated in a temporary folder, and the real CR DICOM sample (JPEG baseline).
Prints the median of several runs per step as a table; no assertions.

Run: ``.venv/bin/python benchmarks/bench_imaging.py``
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

if __package__ in (None, ""):
    # Run as a script: make the project importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._timing import median_seconds
from core.enhance import EnhanceSettings, enhance
from core.imaging import decode_scan
from core.settings import load_settings

_REPEATS = 5
_NIH_PNG = "00000001_000.png"
_DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
_LARGE_SIDE = 3000


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


def run() -> list[dict]:
    """Time decoding and default enhancement of each case.

    Returns:
        Rows ``{"benchmark", "value", "unit"}`` (median milliseconds), for
        ``benchmarks/run_all.py``. Sample cases are left out where the shared
        data folder is absent.
    """
    settings = EnhanceSettings()
    rows: list[dict] = []
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
