"""Re-scoring a patient's scans with the current model; corrections of a scan's view or date."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from core.age import age_at
from core.imaging import DecodedScan
from core.rescore import rescore, restore_scan
from core.timeline import scans_needing_rescore
from core.views import View, is_frontal
from services.imports import classify, view_doubt
from storage.actor import Actor
from storage.db import Database
from storage.profile import get_birth_year
from storage.scans import (
    ScanSummary,
    add_results,
    load_scan,
    update_scan_date,
    update_scan_view,
)

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
    the model was trained on frontal films only. Each scan is scored for the patient's age at
    its date (``services.imports.classify`` prefers the file's own age), as at upload. The
    older results stay stored and listed; the new ones are stored in one transaction, so an
    interruption leaves every scan as it was.

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
    if not pending:
        return RescoreOutcome(0, classifier.info.version)
    birth_year = get_birth_year(db, actor, actor.user_id)
    dates = {scan.id: scan.scan_date for scan in scans}

    def restored(scan_id: int) -> tuple[DecodedScan, int | None]:
        record = load_scan(db, actor, scan_id)
        return restore_scan(record.pixels, record.metadata), age_at(birth_year, dates[scan_id])

    scored = rescore(
        pending,
        load=restored,
        predict=lambda loaded: classify(classifier, *loaded),
        on_progress=on_progress,
    )
    add_results(db, actor, scored)
    return RescoreOutcome(len(scored), classifier.info.version)


def change_scan_view(
    db: Database, actor: Actor, scan_id: int, view: View, classifier: Classifier | None
) -> None:
    """Set a scan's view and re-read it at once.

    A side or unknown view has no number anywhere from then on (its earlier results stay in
    the details); a frontal view keeps the view check's doubt, if any, with the scan, and is
    scored by the current model when it has no result of it yet.

    Args:
        db: Database handle.
        actor: The owning patient.
        scan_id: The scan.
        view: The view the patient chose.
        classifier: The current model, or None (the film is then scored later, on re-score).

    Raises:
        storage.policy.AccessDenied: The actor is not the owning patient.
        storage.scans.RecordNotFound: No such scan.
    """
    record = load_scan(db, actor, scan_id)
    scan = restore_scan(record.pixels, record.metadata)
    update_scan_view(db, actor, scan_id, view, view_doubt(scan, view))
    if classifier is None or not is_frontal(view):
        return
    if any(result.model_version == classifier.info.version for result in record.results):
        return
    age = age_at(get_birth_year(db, actor, actor.user_id), record.scan_date)
    add_results(db, actor, [(scan_id, classify(classifier, scan, age))])


def change_scan_date(db: Database, actor: Actor, scan_id: int, scan_date: date) -> None:
    """Correct the date a scan was taken; its reading follows (rises are measured by date).

    Raises:
        storage.policy.AccessDenied: The actor is not the owning patient.
        storage.scans.RecordNotFound: No such scan.
    """
    update_scan_date(db, actor, scan_id, scan_date)
