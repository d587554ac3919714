"""The DICOM identity of films that came as DICOM files, for the exports that reference them.

A FHIR ``ImagingStudy`` (``services.fhir``) and a DICOM SR (``services.dicom_sr``) name the
film they speak of by its Study, Series and SOP Instance UIDs, which ``core.imaging`` keeps in
the scan's sealed metadata when it decodes a DICOM file. Films saved from PNG or JPEG have
none; DICOM films saved before the UIDs were kept have none either, and say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from storage.actor import Actor
from storage.db import Database
from storage.scans import ScanSummary, list_scan_metadata

#: Said of a DICOM film saved before the app kept its DICOM identifiers.
NO_UIDS_SENTENCE = (
    "This film was saved before the app kept its DICOM identifiers, so nothing can reference "
    "it; save the file again to add them."
)
#: Said of a film that did not come as a DICOM file.
NOT_DICOM_SENTENCE = "This film was not a DICOM file, so it has no DICOM identifiers."


@dataclass(frozen=True)
class DicomRef:
    """What identifies one DICOM film and the study it belongs to.

    Attributes:
        study_instance_uid: Study Instance UID (0020,000D).
        series_instance_uid: Series Instance UID (0020,000E).
        sop_instance_uid: SOP Instance UID (0008,0018).
        sop_class_uid: SOP Class UID (0008,0016).
        modality: Modality (0008,0060), e.g. ``CR``.
        patient_id: The hospital's Patient ID (0010,0020), or None.
        accession_number: Accession Number (0008,0050), or None.
        patient_sex: Patient's Sex (0010,0040), or None.
        study_date: Study Date (0008,0020), or None.
        body_part: Body Part Examined (0018,0015), or None.
        patient_orientation: Patient Orientation (0020,0020) of the film, e.g. ``("L", "F")``,
            or None when the header did not give it (or the film was saved before it was kept).
    """

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    modality: str | None = None
    patient_id: str | None = None
    accession_number: str | None = None
    patient_sex: str | None = None
    study_date: date | None = None
    body_part: str | None = None
    patient_orientation: tuple[str, str] | None = None


def dicom_ref(metadata: Mapping[str, Any]) -> DicomRef | None:
    """The DICOM identity kept in a scan's metadata (``ScanMetadata.to_dict()``).

    Args:
        metadata: The scan's stored metadata.

    Returns:
        The identity, or None when the film did not come as DICOM or its UIDs were not kept.
    """
    uids = [
        metadata.get(key)
        for key in (
            "study_instance_uid",
            "series_instance_uid",
            "sop_instance_uid",
            "sop_class_uid",
        )
    ]
    if metadata.get("source_format") != "dicom" or not all(uids):
        return None
    study, series, instance, sop_class = (str(uid) for uid in uids)
    study_date = metadata.get("study_date")
    orientation = metadata.get("patient_orientation")
    return DicomRef(
        study_instance_uid=study,
        series_instance_uid=series,
        sop_instance_uid=instance,
        sop_class_uid=sop_class,
        modality=metadata.get("modality"),
        patient_id=metadata.get("patient_id"),
        accession_number=metadata.get("accession_number"),
        patient_sex=metadata.get("patient_sex"),
        study_date=date.fromisoformat(study_date) if study_date else None,
        body_part=metadata.get("body_part"),
        patient_orientation=(str(orientation[0]), str(orientation[1])) if orientation else None,
    )


def came_as_dicom(scan: ScanSummary) -> bool:
    """Whether a scan was saved from a DICOM file (only DICOM files state a modality)."""
    return scan.modality is not None


def dicom_refs(db: Database, actor: Actor, scans: Sequence[ScanSummary]) -> dict[int, DicomRef]:
    """The DICOM identity of each scan that came as DICOM and has its UIDs kept.

    The record's sealed metadata is read once (audited), never the images.

    Args:
        db: Database handle.
        actor: The patient, or a clinician with access.
        scans: Scans of one patient (``services.records.PatientRecord.scans``).

    Returns:
        ``{scan id: identity}``; scans without one are left out.

    Raises:
        storage.policy.AccessDenied: The actor may not read these scans.
    """
    dicom = {scan.id for scan in scans if came_as_dicom(scan)}
    if not dicom:
        return {}
    owners = {scan.owner_id for scan in scans}
    refs = {}
    for owner in owners:
        for scan_id, metadata in list_scan_metadata(db, actor, owner).items():
            ref = dicom_ref(metadata) if scan_id in dicom else None
            if ref is not None:
                refs[scan_id] = ref
    return refs
