"""Re-score stored scans with the current model, one scan at a time.

The loop takes its storage and model steps as functions, so it stays free of
Streamlit and of the database: ``services.rescore`` passes ``storage.scans`` calls and the
caller's classifier, and stores the new results beside the older ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import date
from typing import Any, TypeVar

import numpy as np

from core.imaging import DecodedScan, ScanMetadata
from core.views import View

L = TypeVar("L")
P = TypeVar("P")


def restore_scan(pixels: np.ndarray, metadata: Mapping[str, Any]) -> DecodedScan:
    """Rebuild the decoded scan from stored pixels and ``ScanMetadata.to_dict()`` output.

    Unknown keys are ignored and missing ones take their defaults, so metadata
    stored by an older or newer app version still loads; width and height
    come from the pixels when absent.

    Args:
        pixels: Stored float32 pixels (H, W) in [0, 1].
        metadata: The metadata dictionary saved with the scan.

    Returns:
        A :class:`DecodedScan` the classifier accepts.
    """
    known = {f.name for f in fields(ScanMetadata)}
    values = {key: value for key, value in metadata.items() if key in known}
    values.setdefault("source_format", "png")
    values.setdefault("height", int(pixels.shape[0]))
    values.setdefault("width", int(pixels.shape[1]))
    if isinstance(values.get("study_date"), str):
        values["study_date"] = date.fromisoformat(values["study_date"])
    if values.get("pixel_spacing") is not None:
        values["pixel_spacing"] = tuple(float(v) for v in values["pixel_spacing"])
    if values.get("patient_orientation") is not None:
        row, column = values["patient_orientation"]
        values["patient_orientation"] = (str(row), str(column))
    if values.get("view") is not None:
        values["view"] = View(values["view"])
    return DecodedScan(pixels=np.asarray(pixels, dtype=np.float32), metadata=ScanMetadata(**values))


def rescore(
    scan_ids: Sequence[int],
    load: Callable[[int], L],
    predict: Callable[[L], P],
    on_progress: Callable[[int, int], None] | None = None,
) -> list[tuple[int, P]]:
    """Score each scan again, one at a time so that progress can be shown.

    Args:
        scan_ids: Scans to re-score, in order.
        load: Reads one scan (e.g. ``load_scan`` then :func:`restore_scan`, with what else the
            model needs of it, such as the patient's age at its date).
        predict: Scores what ``load`` returned with the current model.
        on_progress: Optional ``on_progress(done, total)`` after each scan.

    Returns:
        ``(scan_id, prediction)`` pairs in order, for the caller to store in
        one go (``storage.scans.add_results``) beside the older results.
    """
    total = len(scan_ids)
    scored = []
    for done, scan_id in enumerate(scan_ids, start=1):
        scored.append((scan_id, predict(load(scan_id))))
        if on_progress is not None:
            on_progress(done, total)
    return scored
