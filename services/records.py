"""A patient's record read once per view: every scan's reading, the timeline, the scan view.

Every page that shows a patient's scans (My scans, Timeline, Compare, Report, teleconsult,
sharing) and the command line's export calls :func:`read_patient`, which lists the scans
(audited once) and reads each through ``core.scan_reading.read_scans`` with the current
model's version, the model's validity table and the patient's population. Pages render the
view objects returned here and decide nothing about a scan on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.annotations import mark_labels
from core.enhance import EnhanceSettings, enhance, enhance_as_saved
from core.overlay import FilmPicture, draw_annotations, film_picture, overlay_heatmap
from core.report import HEATMAP_CAPTION
from core.rescore import restore_scan
from core.scan_reading import (
    DEFAULT_RISE_MARGIN,
    ScanReading,
    ScanStatus,
    attention_summary,
    default_compare_pair,
    latest_scored_frontal,
    read_scans,
)
from core.timeline import (
    details_table,
    scans_needing_rescore,
    timeline_figure,
    timeline_frame,
    timeline_table,
)
from core.views import NOT_SCORED_SENTENCE, UNKNOWN_NOT_SCORED_SENTENCE, View
from core.words import plural
from services.validity import patient_population, validity_of
from storage.actor import Actor
from storage.db import Database
from storage.notes import NoteRecord, list_notes
from storage.profile import get_birth_year
from storage.scans import ScanRecord, ScanSummary, list_scans, load_scan

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from models.inference import Classifier


@dataclass(frozen=True)
class PatientRecord:
    """One patient's scans with their readings, as one viewer may see them.

    Attributes:
        patient_id: Whose record.
        scans: The scans the viewer may see, oldest first.
        readings: One reading per scan, in the same order.
        birth_year: The patient's birth year, or None.
        current_version: The model version the readings are of (None: no model loaded).
    """

    patient_id: int
    scans: tuple[ScanSummary, ...]
    readings: tuple[ScanReading, ...]
    birth_year: int | None
    current_version: str | None

    def reading(self, scan_id: int) -> ScanReading:
        """The reading of one scan of this record.

        Raises:
            KeyError: The scan is not in this record.
        """
        for reading in self.readings:
            if reading.scan_id == scan_id:
                return reading
        raise KeyError(scan_id)

    def scan(self, scan_id: int) -> ScanSummary:
        """One scan of this record (without pixels).

        Raises:
            KeyError: The scan is not in this record.
        """
        for scan in self.scans:
            if scan.id == scan_id:
                return scan
        raise KeyError(scan_id)

    @property
    def labels(self) -> dict[int, str]:
        """Each scan's distinct name (date and view), by id."""
        return {reading.scan_id: reading.label for reading in self.readings}

    @property
    def attention(self) -> str | None:
        """One sentence when films need attention (``core.scan_reading.attention_summary``)."""
        return attention_summary(self.readings)

    @property
    def report_default(self) -> int | None:
        """The scan a report opens on: the latest film with numbers, else the latest."""
        chosen = latest_scored_frontal(self.readings)
        return None if chosen is None else chosen.scan_id

    @property
    def compare_default(self) -> tuple[int, int] | None:
        """The pair Compare opens on (never a film of uncertain view)."""
        return default_compare_pair(self.readings)


def read_patient(
    db: Database,
    actor: Actor,
    patient_id: int,
    classifier: Classifier | None,
    *,
    margin: float = DEFAULT_RISE_MARGIN,
    viewing: str | None = None,
) -> PatientRecord:
    """List a patient's scans and read each one (the listing and the birth year are audited).

    Args:
        db: Database handle.
        actor: The patient, or a clinician with access.
        patient_id: Whose scans.
        classifier: The current model; None when it cannot be loaded (each scan's latest
            result is read then).
        margin: Rise since the last comparable film that raises a flag.
        viewing: The page visit or teleconsult reading the record (``pages/ui.viewing``):
            the reads are audited at its first run, not at each rerun; None audits every call.

    Returns:
        The record.

    Raises:
        storage.policy.AccessDenied: The actor may not read this patient's scans.
    """
    scans = list_scans(db, actor, patient_id, viewing=viewing)
    birth_year = get_birth_year(db, actor, patient_id, viewing=viewing)
    return record_of(scans, birth_year, classifier, margin=margin, patient_id=patient_id)


def record_of(
    scans: Sequence[ScanSummary],
    birth_year: int | None,
    classifier: Classifier | None,
    *,
    patient_id: int,
    margin: float = DEFAULT_RISE_MARGIN,
) -> PatientRecord:
    """Read scans already listed (the command line's export lists them itself).

    Args:
        scans: The patient's scans.
        birth_year: The patient's birth year, or None.
        classifier: The current model, or None.
        patient_id: Whose scans.
        margin: See :func:`read_patient`.

    Returns:
        The record.
    """
    version = classifier.info.version if classifier is not None else None
    ordered = tuple(sorted(scans, key=lambda s: (s.scan_date, s.id)))
    readings = read_scans(
        ordered,
        current_version=version,
        validity_of=validity_of,
        population_of=lambda stored, on: patient_population(stored, birth_year, on),
        margin=margin,
    )
    return PatientRecord(patient_id, ordered, tuple(readings), birth_year, version)


@dataclass(frozen=True)
class PatientTimeline:
    """Everything the Timeline shows, ready to render.

    Attributes:
        record: The record it was drawn from.
        figure: The chart; None when no scan has a number.
        table: One row per scan (``core.timeline.timeline_table``).
        details: Every stored result, older models' included.
        attention: One sentence when films need attention, else None.
        unplotted: One sentence per reason some scans have no point.
        greyed_hidden: Some findings learned from other patients are left off the chart.
        pending_rescore: Frontal scans without a result of the current model.
    """

    record: PatientRecord
    figure: go.Figure | None
    table: pd.DataFrame
    details: pd.DataFrame
    attention: str | None
    unplotted: tuple[str, ...]
    greyed_hidden: bool
    pending_rescore: tuple[int, ...]


def timeline_of(record: PatientRecord, *, show_greyed: bool = False) -> PatientTimeline:
    """The timeline of a record already read.

    Args:
        record: From :func:`read_patient`.
        show_greyed: Also plot findings learned from other patients than this one (faint).

    Returns:
        The timeline.
    """
    frame = timeline_frame(record.readings, include_greyed=show_greyed)
    greyed = any(item.greyed for reading in record.readings for item in reading.findings)
    pending = (
        tuple(scans_needing_rescore(record.scans, record.current_version))
        if record.current_version is not None
        else ()
    )
    return PatientTimeline(
        record=record,
        figure=None if frame.empty else timeline_figure(frame, record.readings),
        table=timeline_table(record.readings),
        details=details_table(record.scans),
        attention=record.attention,
        unplotted=_unplotted(record.readings),
        greyed_hidden=greyed and not show_greyed,
        pending_rescore=pending,
    )


def _unplotted(readings: Sequence[ScanReading]) -> tuple[str, ...]:
    by_status: dict[ScanStatus, list[ScanReading]] = {}
    for reading in readings:
        by_status.setdefault(reading.status, []).append(reading)
    sentences = []
    laterals = [r for r in by_status.get(ScanStatus.NOT_SCORED_VIEW, []) if r.view is View.LATERAL]
    unknown = [r for r in by_status.get(ScanStatus.NOT_SCORED_VIEW, []) if r.view is View.UNKNOWN]
    if laterals:
        sentences.append(f"{plural(len(laterals), 'side (lateral) view')}. {NOT_SCORED_SENTENCE}")
    if unknown:
        sentences.append(
            f"{plural(len(unknown), 'scan')} of unknown view. {UNKNOWN_NOT_SCORED_SENTENCE}"
        )
    if unsure := by_status.get(ScanStatus.UNSURE):
        sentences.append(
            f"{plural(len(unsure), 'film')} the model was unsure about: no number is shown for "
            f"{'it' if len(unsure) == 1 else 'them'}; the reasons are in the table."
        )
    if waiting := by_status.get(ScanStatus.AWAITING_RESCORE):
        sentences.append(
            f"{plural(len(waiting), 'frontal film')} without a result of the current model: "
            "not plotted until scored."
        )
    return tuple(sentences)


@dataclass(frozen=True)
class ScanView:
    """One scan opened for reading: its image as displayed, its reading and its notes.

    Attributes:
        reading: The scan's reading (the same as on every other page).
        image: RGB ``uint8`` (H, W, 3): the saved enhancement, the heatmap if asked, the
            clinicians' marks.
        caption: What the image shows, in one or two sentences.
        notes: The clinicians' notes, oldest first.
        mark_labels: Per note, the label of its mark on the image ("" without one).
        filename: The uploaded file's name.
        created_at: When it was saved.
        record: The scan with its pixels (for drawing on it).
        details: Every stored result of the scan, older models' included
            (``core.timeline.details_table``).
    """

    reading: ScanReading
    image: np.ndarray
    caption: str
    notes: tuple[NoteRecord, ...]
    mark_labels: tuple[str, ...]
    filename: str
    created_at: datetime
    record: ScanRecord
    details: pd.DataFrame


def display_image(
    record: ScanRecord,
    *,
    settings: EnhanceSettings | None = None,
    classifier: Classifier | None = None,
    heatmap_finding: str | None = None,
    marks: Sequence[dict[str, float]] = (),
    window: tuple[float, float] | None = None,
) -> tuple[np.ndarray, str]:
    """The one way a stored scan's image is displayed, on every page and in the report.

    Args:
        record: The scan with its pixels.
        settings: Display settings chosen on the page (Compare applies one to both films);
            None applies the enhancement saved with the scan.
        classifier: The current model, needed for a heatmap.
        heatmap_finding: Overlay where the model looked for this finding (Grad-CAM).
        marks: Clinicians' marks to draw (``core.annotations``).
        window: ``(level, width)`` of a display window applied on top of the saved enhancement
            (the teleconsult's window and level), or None.

    Returns:
        ``(RGB uint8 image, caption)``; the caption speaks of coloured areas only when a
        heatmap is drawn.
    """
    if settings is None:
        view = enhance_as_saved(record.pixels, record.enhancement)
        pixels, caption = view.pixels, view.caption
    else:
        pixels, caption = enhance(record.pixels, settings), "Shown with the display settings above."
    if window is not None:
        # Only the window: the saved view is already contrast-equalised and sharpened.
        level, width = window
        pixels = enhance(
            pixels,
            EnhanceSettings(
                window_center=level, window_width=width, clahe_clip_limit=0, unsharp_amount=0
            ),
        )
    heat = None
    if classifier is not None and heatmap_finding is not None:
        heat = classifier.heatmap(restore_scan(record.pixels, record.metadata), heatmap_finding)
        caption += " " + HEATMAP_CAPTION
    image = overlay_heatmap(pixels, heat)
    if marks:
        image = draw_annotations(image, list(marks))
        caption += " Green marks: the clinicians' notes below."
    return image, caption


@dataclass(frozen=True)
class ScanNotes:
    """One scan's reading and its clinicians' notes, without the film.

    Attributes:
        reading: The scan's reading (the same as on every other page).
        notes: The notes, oldest first.
        mark_labels: Per note, the label of its mark on the image ("" without one).
    """

    reading: ScanReading
    notes: tuple[NoteRecord, ...]
    mark_labels: tuple[str, ...]

    @property
    def marks(self) -> list[dict[str, float]]:
        """The notes' marks, in note order (notes without one left out)."""
        return [note.annotation for note in self.notes if note.annotation]


def scan_notes(
    db: Database, actor: Actor, record: PatientRecord, scan_id: int, *, viewing: str | None = None
) -> ScanNotes:
    """A scan's reading and notes, read again after each note without decoding the film.

    Raises:
        storage.policy.AccessDenied: The actor may not read this scan.
    """
    notes = tuple(list_notes(db, actor, scan_id, viewing=viewing))
    return ScanNotes(
        reading=record.reading(scan_id),
        notes=notes,
        mark_labels=tuple(
            label or "" for label in mark_labels([note.annotation for note in notes])
        ),
    )


@dataclass(frozen=True)
class MarkingFilm:
    """A film opened for marking: the picture the chart shows, with its window.

    Attributes:
        picture: The film with the saved enhancement and the window, encoded for the browser.
        has_dicom_uid: The film came from a DICOM file with a SOP Instance UID (0008,0018),
            so a structured report can reference it in the PACS.
    """

    picture: FilmPicture
    has_dicom_uid: bool


def film_for_marking(
    db: Database,
    actor: Actor,
    scan_id: int,
    window: tuple[float, float],
    *,
    viewing: str | None = None,
) -> MarkingFilm:
    """Decode a film once for marking it; the page keeps it while the film and window stay.

    Args:
        db: Database handle.
        actor: A clinician with access, or the patient.
        scan_id: The scan.
        window: ``(level, width)`` of the display window (:func:`display_image`).
        viewing: The teleconsult opening it (audited once per viewing and scan).

    Raises:
        storage.policy.AccessDenied: The actor may not read this scan.
        storage.scans.RecordNotFound: No such scan.
    """
    stored = load_scan(db, actor, scan_id, viewing=viewing)
    image, _ = display_image(stored, window=window)
    return MarkingFilm(film_picture(image), bool(stored.metadata.get("sop_instance_uid")))


def open_scan_view(
    db: Database,
    actor: Actor,
    record: PatientRecord,
    scan_id: int,
    classifier: Classifier | None = None,
    *,
    heatmap_finding: str | None = None,
    viewing: str | None = None,
) -> ScanView:
    """Open one scan of a record: image as displayed, notes, reading (the read is audited).

    Args:
        db: Database handle.
        actor: The patient, or a clinician with access.
        record: The record the scan belongs to (:func:`read_patient`).
        scan_id: The scan.
        classifier: The current model, for a heatmap.
        heatmap_finding: Draw where the model looked for this finding; ignored for a scan
            without numbers (no score to explain).
        viewing: The page visit or teleconsult opening it (audited once per viewing and scan).

    Returns:
        The scan view.

    Raises:
        storage.policy.AccessDenied: The actor may not read this scan.
        storage.scans.RecordNotFound: No such scan.
    """
    reading = record.reading(scan_id)
    stored = load_scan(db, actor, scan_id, viewing=viewing)
    noted = scan_notes(db, actor, record, scan_id, viewing=viewing)
    image, caption = display_image(
        stored,
        classifier=classifier,
        heatmap_finding=heatmap_finding if reading.has_numbers else None,
        marks=noted.marks,
    )
    return ScanView(
        reading=reading,
        image=image,
        caption=caption,
        notes=noted.notes,
        mark_labels=noted.mark_labels,
        filename=stored.filename,
        created_at=stored.created_at,
        record=stored,
        details=details_table([stored]),
    )


def side_by_side(
    db: Database,
    actor: Actor,
    scan_ids: Sequence[int],
    settings: EnhanceSettings | None,
    classifier: Classifier | None = None,
    heatmap_finding: str | None = None,
    *,
    viewing: str | None = None,
) -> list[np.ndarray]:
    """Scans displayed alike for comparing them (:func:`display_image` with one setting).

    Args:
        db: Database handle.
        actor: The patient, or a clinician with access.
        scan_ids: The scans, in display order.
        settings: One display setting for all of them, so differences are the scans'; None
            shows each as saved.
        classifier: The current model; needed for a heatmap.
        heatmap_finding: Overlay the model's attention for this finding.
        viewing: The page visit or teleconsult comparing them (audited once per viewing).

    Returns:
        One RGB ``uint8`` image per scan, in order.

    Raises:
        storage.policy.AccessDenied: The actor may not read one of the scans.
        storage.scans.RecordNotFound: A scan was deleted meanwhile.
    """
    return [
        display_image(
            load_scan(db, actor, scan_id, viewing=viewing),
            settings=settings,
            classifier=classifier,
            heatmap_finding=heatmap_finding,
        )[0]
        for scan_id in scan_ids
    ]
