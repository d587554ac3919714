"""Tests of re-scoring stored scans (rebuild the decoded scan, loop, progress)."""

from __future__ import annotations

from datetime import date

import numpy as np

from core.imaging import ScanMetadata
from core.rescore import rescore, restore_scan


def test_restore_scan_round_trips_metadata_to_dict() -> None:
    meta = ScanMetadata(
        source_format="dicom",
        width=3,
        height=2,
        modality="DX",
        study_date=date(2026, 3, 2),
        view_position="PA",
        pixel_spacing=(0.1, 0.2),
        bits=12,
        patient_orientation=("L", "F"),
    )
    pixels = np.zeros((2, 3), dtype=np.float64)
    scan = restore_scan(pixels, {**meta.to_dict(), "added_by_a_later_version": 1})
    assert scan.metadata == meta
    assert scan.pixels.dtype == np.float32


def test_restore_scan_fills_missing_fields_from_the_pixels() -> None:
    scan = restore_scan(np.ones((5, 7), dtype=np.float32), {})
    assert (scan.metadata.width, scan.metadata.height) == (7, 5)


def test_rescore_scores_every_scan_in_order_with_progress() -> None:
    progress: list[tuple[int, int]] = []
    scored = rescore(
        [4, 2],
        load=lambda scan_id: restore_scan(np.full((8, 8), scan_id / 10, dtype=np.float32), {}),
        predict=lambda scan: round(float(scan.pixels.mean()), 3),
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert scored == [(4, 0.4), (2, 0.2)]
    assert progress == [(1, 2), (2, 2)]
