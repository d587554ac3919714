"""Looking at stored scans: one scan with its notes, or several side by side."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.enhance import EnhanceSettings, enhance
from core.overlay import overlay_heatmap
from core.rescore import restore_scan
from storage.actor import Actor
from storage.db import Database
from storage.notes import NoteRecord, list_notes
from storage.scans import ScanRecord, load_scan

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from models.inference import Classifier


@dataclass(frozen=True)
class OpenedScan:
    """A scan opened for reading, with the clinicians' notes on it.

    Attributes:
        record: The scan with its pixels, metadata, display settings and results.
        notes: Its notes, oldest first.
    """

    record: ScanRecord
    notes: list[NoteRecord]


def open_scan(db: Database, actor: Actor, scan_id: int) -> OpenedScan:
    """Read one scan and its notes (each read is audited).

    Args:
        db: Database handle.
        actor: The patient, or a clinician with access.
        scan_id: The scan.

    Returns:
        The scan and its notes.

    Raises:
        storage.policy.AccessDenied: The actor may not read this scan.
        storage.scans.RecordNotFound: No such scan.
    """
    return OpenedScan(load_scan(db, actor, scan_id), list_notes(db, actor, scan_id))


def heatmap_of(classifier: Classifier, record: ScanRecord, finding: str) -> np.ndarray:
    """Where the current model looked for ``finding`` on a stored scan (Grad-CAM, (H, W))."""
    return classifier.heatmap(restore_scan(record.pixels, record.metadata), finding)


def side_by_side(
    db: Database,
    actor: Actor,
    scan_ids: Sequence[int],
    settings: EnhanceSettings,
    classifier: Classifier | None = None,
    heatmap_finding: str | None = None,
) -> list[np.ndarray]:
    """Scans enhanced alike, for comparing them, optionally with where the model looked.

    Args:
        db: Database handle.
        actor: The patient, or a clinician with access.
        scan_ids: The scans, in display order.
        settings: One display enhancement for all of them, so differences are the scans'.
        classifier: The current model; needed for a heatmap.
        heatmap_finding: Overlay the model's attention for this finding (Grad-CAM).

    Returns:
        One RGB ``uint8`` image (H, W, 3) per scan, in order.

    Raises:
        storage.policy.AccessDenied: The actor may not read one of the scans.
        storage.scans.RecordNotFound: A scan was deleted meanwhile.
    """
    records = [load_scan(db, actor, scan_id) for scan_id in scan_ids]
    images = []
    for record in records:
        heat = None
        if classifier is not None and heatmap_finding is not None:
            heat = heatmap_of(classifier, record, heatmap_finding)
        images.append(overlay_heatmap(enhance(record.pixels, settings), heat))
    return images
