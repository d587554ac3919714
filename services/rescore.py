"""Re-scoring a patient's scans with the current model, beside their older results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.imaging import DecodedScan
from core.rescore import rescore, restore_scan
from core.timeline import scans_needing_rescore
from services.imports import classify
from storage.actor import Actor
from storage.db import Database
from storage.scans import ScanSummary, add_results, load_scan

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from models.inference import Classifier


@dataclass(frozen=True)
class RescoreOutcome:
    """What a re-scoring did.

    Attributes:
        rescored: How many scans got a new result.
        model_version: The version of the model that scored them.
    """

    rescored: int
    model_version: str


def rescore_scans(
    db: Database,
    actor: Actor,
    scans: Sequence[ScanSummary],
    classifier: Classifier,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> RescoreOutcome:
    """Score again those of a patient's frontal scans that have no result of the current model.

    Side views and scans of unknown view are skipped (``core.timeline.scans_needing_rescore``):
    the model was trained on frontal films only. The older results stay stored and listed;
    the new ones are stored in one transaction, so an interruption leaves every scan as it was.

    Args:
        db: Database handle.
        actor: The patient.
        scans: The patient's scans as listed (``storage.scans.list_scans``).
        classifier: The current model.
        on_progress: Called after each scan with the count done and the total.

    Returns:
        How many scans were re-scored, and by which model version.

    Raises:
        storage.policy.AccessDenied: The actor may not add results to these scans.
        storage.scans.RecordNotFound: A scan was deleted meanwhile.
    """
    pending = scans_needing_rescore(scans, classifier.info.version)

    def restored(scan_id: int) -> DecodedScan:
        record = load_scan(db, actor, scan_id)
        return restore_scan(record.pixels, record.metadata)

    scored = rescore(
        pending,
        load=restored,
        predict=lambda scan: classify(classifier, scan),
        on_progress=on_progress,
    )
    add_results(db, actor, scored)
    return RescoreOutcome(len(scored), classifier.info.version)
