"""Building the plain-language report of one scan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.enhance import enhance_as_saved
from core.report import Report, ReportNote, build_report
from core.timeline import previous_comparable, red_flags, select_result, sort_scans
from services.validity import excluded_by_scan, reading_for
from services.viewing import heatmap_of, open_scan
from storage.actor import Actor
from storage.db import Database
from storage.profile import get_birth_year, get_display_name
from storage.scans import ScanSummary

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from models.inference import Classifier


def build_scan_report(
    db: Database,
    actor: Actor,
    scans: Sequence[ScanSummary],
    scan_id: int,
    classifier: Classifier | None,
    *,
    heatmap_finding: str | None = None,
    zone: str | None = None,
) -> Report:
    """The report of one scan: its result, the change since the last film of its projection
    on an earlier day, flags and notes.

    Args:
        db: Database handle.
        actor: Who reads it (the patient, or a clinician with access).
        scans: The patient's scans as listed (``storage.scans.list_scans``); ``scan_id`` is one.
        scan_id: The scan to report on.
        classifier: The current model: its version picks the result shown and its thresholds
            fill in where a result stored none; ``None`` when unavailable.
        heatmap_finding: Draw where the model looked for this finding (needs ``classifier``).
        zone: The reader's IANA time zone, for the times printed.

    Returns:
        The report, with the image as it was saved, the heatmap, the clinicians' marks, the
        timeline up to this scan and the patient's display name (for the patient's own report
        their username when they chose none).

    Raises:
        storage.policy.AccessDenied: The actor may not read this scan.
        storage.scans.RecordNotFound: The scan was deleted meanwhile.
    """
    ordered = sort_scans(scans)
    position = [scan.id for scan in ordered].index(scan_id)
    version = classifier.info.version if classifier is not None else None
    thresholds = classifier.info.thresholds if classifier is not None else None
    opened = open_scan(db, actor, scan_id)
    heatmap = None
    if classifier is not None and heatmap_finding is not None:
        heatmap = heatmap_of(classifier, opened.record, heatmap_finding)
    notes = [
        ReportNote(note.author_username, note.created_at, note.text, note.annotation)
        for note in opened.notes
    ]
    view = enhance_as_saved(opened.record.pixels, opened.record.enhancement)
    owner_id = opened.record.owner_id
    birth_year = get_birth_year(db, actor, owner_id)
    summary = next(scan for scan in scans if scan.id == scan_id)
    shown = select_result(summary.results, version)  # the result the report shows
    reading = reading_for(
        next((r for r in summary.results if shown is not None and r.id == shown.id), None),
        scan_date=summary.scan_date,
        birth_year=birth_year,
    )
    excluded = excluded_by_scan(scans, birth_year)
    name = get_display_name(db, actor, owner_id)
    if name is None and actor.user_id == owner_id:
        name = actor.username
    return build_report(
        ordered[position],
        current_version=version,
        thresholds=thresholds,
        previous=previous_comparable(ordered, ordered[position]),
        red_flag_reasons=red_flags(
            ordered, thresholds, current_version=version, excluded=excluded
        ).get(scan_id, []),
        image=view.pixels,
        image_note=None if view.as_saved else view.caption,
        heatmap=heatmap,
        notes=notes,
        patient_name=name,
        zone=zone,
        history=ordered,
        reading=reading,
    )
