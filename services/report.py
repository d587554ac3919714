"""Building the plain-language report of one scan, from its reading."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.report import Report, ReportNote, build_report
from services.records import PatientRecord, open_scan_view
from storage.actor import Actor
from storage.db import Database
from storage.profile import get_display_name

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from models.inference import Classifier


def build_scan_report(
    db: Database,
    actor: Actor,
    record: PatientRecord,
    scan_id: int,
    classifier: Classifier | None,
    *,
    heatmap_finding: str | None = None,
    zone: str | None = None,
    viewing: str | None = None,
) -> Report:
    """The report of one scan: its reading, the change since the last comparable film, notes.

    Args:
        db: Database handle.
        actor: Who reads it (the patient, or a clinician with access).
        record: The patient's record (``services.records.read_patient``); ``scan_id`` is in it.
        scan_id: The scan to report on.
        classifier: The current model, for a heatmap; ``None`` when unavailable.
        heatmap_finding: Draw where the model looked for this finding (a scan with numbers
            only).
        zone: The reader's IANA time zone, for the times printed.
        viewing: The page visit building it: its reads are audited once per viewing.

    Returns:
        The report, with the image as displayed everywhere (``services.records.display_image``),
        the timeline as the Timeline plots it, and the patient's display name (for the
        patient's own report their username when they chose none).

    Raises:
        storage.policy.AccessDenied: The actor may not read this scan.
        storage.scans.RecordNotFound: The scan was deleted meanwhile.
    """
    opened = open_scan_view(
        db, actor, record, scan_id, classifier, heatmap_finding=heatmap_finding, viewing=viewing
    )
    name = get_display_name(db, actor, record.patient_id, viewing=viewing)
    if name is None and actor.user_id == record.patient_id:
        name = actor.username
    return build_report(
        opened.reading,
        history=record.readings,
        filename=opened.filename,
        image=opened.image,
        image_note=opened.caption,
        notes=[
            ReportNote(note.author_username, note.created_at, note.text, note.annotation)
            for note in opened.notes
        ],
        patient_name=name,
        zone=zone,
    )
