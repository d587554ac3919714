"""A film's reading as a DICOM Comprehensive SR, for the PACS the film came from.

For a scan saved from a DICOM file, :func:`reading_sr` renders its one reading
(``core.scan_reading``) as a TID 1500 Measurement Report made with ``highdicom``, the way AI
results go back to a PACS (IHE AI Results):

- The SR joins the film's study (its Study Instance UID, Patient ID, Accession Number and
  sex, so the PACS files it with the film) in a series of its own, and references the film
  by SOP Class and SOP Instance UID as the source image of every measurement group and in
  the Current Requested Procedure Evidence Sequence.
- The observer is the model as a device (name, version, and a Device Observer UID derived
  from its checkpoint's SHA-256); every group names it as the algorithm (TID 4019: name,
  version, the checkpoint SHA-256 as its parameter).
- Each finding shown is one measurement group (TID 1501) whose finding type is the finding:
  the probability in percent, the level at which the model suggests a closer look, and two
  qualitative evaluations, "flagged" (yes or no, as every page flags it) and "valid for the
  patient's population" (yes, no, or left out when the age is not known).
- A film without numbers (side or unknown view, model unsure, awaiting re-score) has one
  group whose qualitative evaluation is what became of it, and no measurement.
- A "Qualitative Evaluations" container (TID 1500 row 12) holds the reading's headline, its
  reason and its flags as text, as every page words them.
- Each flagged finding's group also holds an "Illustration of ROI" (DCM 121200) image
  reference to a Secondary Capture in the film's study (:func:`heatmap_capture`): the film as
  the app displays it with where the model looked for that finding (Grad-CAM) in colour. Only
  flagged findings get one: a map of where the model looked for a finding it did not flag
  would invite reading a finding into it.

The SR is complete and unverified: a computer model's output that no person has signed.
UIDs are derived from the film, the result and what the reading says, so exporting the same
reading twice gives the same SOP Instance UID, and a changed reading a new one.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import highdicom as hd
import numpy as np
import pydicom
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import JPEGBaseline8Bit
from pydicom.valuerep import DA, TM

from core.scan_reading import FindingShown, ScanReading, ScanStatus
from services.dicom_refs import NO_UIDS_SENTENCE, NOT_DICOM_SENTENCE, DicomRef, dicom_refs
from services.records import PatientRecord, display_image, read_patient
from storage.actor import Actor
from storage.db import Database
from storage.scans import load_scan

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from models.inference import Classifier

#: The coding scheme of the app's own concepts (a private scheme: "99" and a name).
SCHEME = "99CXRTRK"
#: Who made the SR, as DICOM Manufacturer (0008,0070).
MANUFACTURER = "Chest X-ray tracker"
#: Where the app's SR UIDs come from (UUID version 5 under this namespace).
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:cxr-tracker:dicom-sr")
#: Series Number (0020,0011) of the app's SR series.
SR_SERIES_NUMBER = 9901
SR_SERIES_DESCRIPTION = "AI reading (decision support, unverified)"
#: Series Number (0020,0011) of the heatmaps (Secondary Capture) the SRs reference.
HEATMAP_SERIES_NUMBER = 9902
HEATMAP_SERIES_DESCRIPTION = "AI heatmaps (decision support, unverified)"

#: What every group's measurements are of, and the procedure the report is about.
PROCEDURE = codes.SCT.ChestImaging
LEVEL = hd.sr.CodedConcept("level", SCHEME, "Level for a closer look")
FLAGGED = hd.sr.CodedConcept("flagged", SCHEME, "At or above its level")
VALID = hd.sr.CodedConcept("valid", SCHEME, "Valid for the patient's population")
READING_STATUS = hd.sr.CodedConcept("status", SCHEME, "Reading status")
QUALITATIVE_EVALUATIONS = hd.sr.CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
HEADLINE = codes.DCM.Impression
COMMENT = codes.DCM.Comment
ILLUSTRATION = codes.DCM.IllustrationOfROI


@dataclass(frozen=True)
class Heatmap:
    """Where the model looked for one flagged finding, as a Secondary Capture image.

    Attributes:
        finding: The finding (``core.findings.FINDINGS``).
        dataset: The image (:func:`heatmap_capture`).
    """

    finding: str
    dataset: Dataset


@dataclass(frozen=True)
class SrFile:
    """One SR made for one scan.

    Attributes:
        reading: The scan's reading it renders.
        dataset: The SR.
        heatmaps: The Secondary Capture images it references, one per flagged finding
            (none without a model to draw them).
    """

    reading: ScanReading
    dataset: Dataset
    heatmaps: tuple[Heatmap, ...] = ()

    @property
    def scan_id(self) -> int:
        """The scan it reads."""
        return self.reading.scan_id

    @property
    def label(self) -> str:
        """The scan's name (date and view)."""
        return self.reading.label

    @property
    def filename(self) -> str:
        """A name that says which scan it reads, e.g. ``scan-12_2025-03-14_PA.dcm``."""
        return f"{self._stem}.dcm"

    @property
    def _stem(self) -> str:
        view = re.sub(r"[^A-Za-z0-9]+", "-", self.reading.view.value).strip("-")
        return f"scan-{self.scan_id}_{self.reading.scan_date.isoformat()}_{view}"

    def files(self) -> list[tuple[str, bytes]]:
        """``(file name, DICOM Part 10 bytes)`` of the SR and of each heatmap it references,
        e.g. ``scan-12_2025-03-14_PA_heatmap-pneumonia.dcm``."""
        named = [(self.filename, sr_bytes(self.dataset))]
        for heatmap in self.heatmaps:
            named.append((f"{self._stem}_heatmap-{heatmap.finding}.dcm", sr_bytes(heatmap.dataset)))
        return named


@dataclass(frozen=True)
class SrExport:
    """The SRs of a patient's DICOM films, and the scans left out with why.

    Attributes:
        files: One SR per DICOM film that has its identifiers.
        skipped: ``(scan id, label, reason)`` of every other scan.
    """

    files: tuple[SrFile, ...]
    skipped: tuple[tuple[int, str, str], ...]


def patient_srs(
    db: Database,
    actor: Actor,
    patient_id: int,
    classifier: Classifier | None,
    *,
    scan_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> SrExport:
    """One SR per scan of a patient that came as DICOM (the scans are listed and read once).

    Args:
        db: Database handle.
        actor: The patient, or a clinician with access.
        patient_id: Whose scans.
        classifier: The current model (its version picks the result read), or None.
        scan_ids: Only these scans (default: all the actor may see).
        now: When the SRs are made (default: now).

    Returns:
        The SRs, and the scans left out with why (not DICOM, identifiers not kept).

    Raises:
        storage.policy.AccessDenied: The actor may not read these records.
    """
    record = read_patient(db, actor, patient_id, classifier)
    return record_srs(db, actor, record, classifier, scan_ids=scan_ids, now=now)


def record_srs(
    db: Database,
    actor: Actor,
    record: PatientRecord,
    classifier: Classifier | None,
    *,
    scan_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> SrExport:
    """:func:`patient_srs` for a record already read (the heatmaps' films are opened, audited)."""
    files, skipped = [], []
    wanted = None if scan_ids is None else set(scan_ids)
    chosen = [scan for scan in record.scans if wanted is None or scan.id in wanted]
    refs = dicom_refs(db, actor, chosen)
    for scan, reading in zip(record.scans, record.readings, strict=True):
        if wanted is not None and scan.id not in wanted:
            continue
        if scan.modality is None:
            skipped.append((scan.id, reading.label, NOT_DICOM_SENTENCE))
            continue
        ref = refs.get(scan.id)
        if ref is None:
            skipped.append((scan.id, reading.label, NO_UIDS_SENTENCE))
            continue
        heatmaps = _heatmaps(db, actor, reading, ref, classifier, now=now)
        files.append(SrFile(reading, reading_sr(reading, ref, heatmaps, now=now), heatmaps))
    return SrExport(tuple(files), tuple(skipped))


def _heatmaps(
    db: Database,
    actor: Actor,
    reading: ScanReading,
    ref: DicomRef,
    classifier: Classifier | None,
    *,
    now: datetime | None,
) -> tuple[Heatmap, ...]:
    flagged = [item for item in reading.findings if item.flagged]
    # A map is drawn by the model whose result the reading shows, or not at all.
    if not flagged or classifier is None or classifier.info.version != reading.model_version:
        return ()
    stored = load_scan(db, actor, reading.scan_id)
    return tuple(
        Heatmap(
            item.finding,
            heatmap_capture(
                reading,
                ref,
                item,
                display_image(stored, classifier=classifier, heatmap_finding=item.finding)[0],
                number,
                now=now,
            ),
        )
        for number, item in enumerate(flagged, start=1)
    )


def sr_zip(db: Database, actor: Actor, classifier: Classifier | None) -> bytes:
    """The actor's own DICOM films' SRs as one ZIP file, for the My scans download.

    Args:
        db: Database handle.
        actor: The patient.
        classifier: The current model (its version picks the result read), or None.

    Returns:
        A ZIP holding one SR file per DICOM film (named as :attr:`SrFile.filename`); empty of
        files when the record holds no DICOM film with its identifiers.

    Raises:
        storage.policy.AccessDenied: The actor may not read these records.
    """
    export = patient_srs(db, actor, actor.user_id, classifier)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in export.files:
            for name, data in item.files():
                archive.writestr(name, data)
    return buffer.getvalue()


def write_srs(export: SrExport, out_dir: Path) -> list[list[Path]]:
    """Write each SR and its heatmaps as DICOM files (PS3.10) into ``out_dir`` (created if
    missing).

    Returns:
        Per SR, in the export's order, the paths written: the SR's first, then its heatmaps'.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for item in export.files:
        paths = []
        for name, data in item.files():
            path = out_dir / name
            path.write_bytes(data)
            paths.append(path)
        written.append(paths)
    return written


def sr_bytes(dataset: Dataset) -> bytes:
    """An SR as a DICOM Part 10 file."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def _uid(*parts: object) -> str:
    # A UID under 2.25 (a UUID as an integer, PS3.5 B.2), the UUID derived from the parts: the
    # same parts, the same UID.
    return f"2.25.{uuid.uuid5(_NAMESPACE, '/'.join(str(part) for part in parts)).int}"


def _text(value: str, limit: int = 64) -> str:
    # Code meanings and LO values hold 64 characters.
    return value if len(value) <= limit else value[: limit - 3] + "..."


def device_uid(checkpoint_sha256: str | None, model_name: str | None) -> str:
    """The Device Observer UID of a model, derived from its checkpoint (stable across exports)."""
    return _uid("device", model_name, checkpoint_sha256)


def _evidence(ref: DicomRef) -> Dataset:
    """The film as the SR references it: its identity, patient and study (no pixels)."""
    film = Dataset()
    film.SOPClassUID = ref.sop_class_uid
    film.SOPInstanceUID = ref.sop_instance_uid
    film.StudyInstanceUID = ref.study_instance_uid
    film.SeriesInstanceUID = ref.series_instance_uid
    film.Modality = ref.modality or "OT"
    # The name is never kept (only in memory while a CD is read); the ID files the SR with it.
    film.PatientName = ""
    film.PatientID = ref.patient_id or ""
    film.PatientBirthDate = ""
    film.PatientSex = ref.patient_sex if ref.patient_sex in ("M", "F", "O") else ""
    film.AccessionNumber = ref.accession_number or ""
    film.StudyID = ""
    film.StudyDate = ref.study_date.strftime("%Y%m%d") if ref.study_date else ""
    film.StudyTime = ""
    film.ReferringPhysicianName = ""
    return film


def _finding_concept(item: FindingShown) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(item.finding, SCHEME, _text(item.label))


def _yes_no(value: bool) -> hd.sr.CodedConcept:
    code = codes.SCT.Yes if value else codes.SCT.No
    return hd.sr.CodedConcept(code.value, code.scheme_designator, code.meaning)


def _algorithm(reading: ScanReading) -> hd.sr.AlgorithmIdentification | None:
    if reading.model_name is None or reading.model_version is None:
        return None
    parameters = (
        [f"checkpoint SHA-256 {reading.checkpoint_sha256}"] if reading.checkpoint_sha256 else None
    )
    return hd.sr.AlgorithmIdentification(
        name=_text(reading.model_name),
        version=_text(reading.model_version),
        parameters=parameters,
        manufacturer=MANUFACTURER,
    )


def _groups(
    reading: ScanReading, ref: DicomRef, report_uid: str, heatmaps: Sequence[Heatmap]
) -> list[hd.sr.MeasurementsAndQualitativeEvaluations]:
    source = hd.sr.SourceImageForMeasurementGroup(
        referenced_sop_class_uid=ref.sop_class_uid,
        referenced_sop_instance_uid=ref.sop_instance_uid,
    )
    algorithm = _algorithm(reading)
    percent = codes.UCUM.Percent
    illustrations = {heatmap.finding: heatmap.dataset for heatmap in heatmaps}
    groups = []
    for item in reading.findings:
        evaluations = [hd.sr.QualitativeEvaluation(FLAGGED, _yes_no(item.flagged))]
        if item.valid is not None:
            evaluations.append(hd.sr.QualitativeEvaluation(VALID, _yes_no(item.valid)))
        group = hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=_uid(report_uid, item.finding), identifier=_text(item.label)
            ),
            finding_type=_finding_concept(item),
            algorithm_id=algorithm,
            measurements=[
                hd.sr.Measurement(
                    name=codes.DCM.Probability,
                    value=round(item.value * 100, 2),
                    unit=percent,
                ),
                hd.sr.Measurement(name=LEVEL, value=round(item.threshold * 100, 2), unit=percent),
            ],
            qualitative_evaluations=evaluations,
            source_images=[source],
        )
        illustration = illustrations.get(item.finding)
        if illustration is not None:
            group[0].ContentSequence.append(
                hd.sr.ImageContentItem(
                    name=ILLUSTRATION,
                    referenced_sop_class_uid=illustration.SOPClassUID,
                    referenced_sop_instance_uid=illustration.SOPInstanceUID,
                    relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
                )
            )
        groups.append(group)
    if not groups:
        # A film without numbers: what became of it, and no measurement.
        status = hd.sr.CodedConcept(
            reading.status.name.lower().replace("_", "-"), SCHEME, reading.status_words
        )
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=_uid(report_uid, "status"), identifier="Reading"
                ),
                algorithm_id=algorithm,
                qualitative_evaluations=[hd.sr.QualitativeEvaluation(READING_STATUS, status)],
                source_images=[source],
            )
        )
    return groups


def _evaluations_container(reading: ScanReading) -> hd.sr.ContainerContentItem:
    """TID 1500 row 12: the reading's words (headline, reason, flags) as text."""
    container = hd.sr.ContainerContentItem(
        name=QUALITATIVE_EVALUATIONS, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )
    sentences = [(HEADLINE, reading.headline)]
    if reading.reason and reading.reason not in reading.headline:
        sentences.append((COMMENT, reading.reason))
    sentences += [(COMMENT, flag) for flag in reading.flags]
    container.ContentSequence = hd.sr.ContentSequence(
        [
            hd.sr.TextContentItem(
                name=name, value=text, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
            )
            for name, text in sentences
        ]
    )
    return container


def reading_sr(
    reading: ScanReading,
    ref: DicomRef,
    heatmaps: Sequence[Heatmap] = (),
    *,
    now: datetime | None = None,
) -> Dataset:
    """One film's reading as a Comprehensive SR (TID 1500) referencing the film.

    Args:
        reading: The film's reading (``core.scan_reading``).
        ref: The film's DICOM identity (``services.dicom_refs``).
        heatmaps: Secondary Captures of flagged findings (:func:`heatmap_capture`) to
            reference, each from its finding's group.
        now: When the SR is made (its Content Date and Time; default: now).

    Returns:
        The SR dataset, ready to write or send.
    """
    now = now or datetime.now(UTC)
    digest = hashlib.sha256(
        "\n".join(
            [
                reading.headline,
                *reading.flags,
                *(f"{f.finding}:{f.value!r}:{f.flagged}:{f.valid}" for f in reading.findings),
            ]
        ).encode()
    ).hexdigest()
    key = (ref.sop_instance_uid, reading.result_id, reading.status.value, digest)
    report_uid = _uid("sr", *key)
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=device_uid(reading.checkpoint_sha256, reading.model_name),
            name=_text(reading.model_name or MANUFACTURER),
            manufacturer_name=MANUFACTURER,
            model_name=(
                _text(f"{reading.model_name} {reading.model_version}")
                if reading.model_name and reading.model_version
                else None
            ),
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=PROCEDURE,
        imaging_measurements=_groups(reading, ref, report_uid, heatmaps),
    )
    report[0].ContentSequence.append(_evaluations_container(reading))
    sr = hd.sr.ComprehensiveSR(
        evidence=[_evidence(ref), *(heatmap.dataset for heatmap in heatmaps)],
        content=report[0],
        series_instance_uid=_uid("sr-series", ref.study_instance_uid, reading.checkpoint_sha256),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=report_uid,
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=True,
        is_verified=False,
        series_description=SR_SERIES_DESCRIPTION,
        coding_schemes=[
            CodingSchemeIdentificationItem(
                designator=SCHEME,
                name="Chest X-ray tracker concepts",
                responsible_organization=MANUFACTURER,
            )
        ],
        content_date=now.date(),
        content_time=now.time().replace(tzinfo=None),
    )
    return sr


def heatmap_capture(
    reading: ScanReading,
    ref: DicomRef,
    item: FindingShown,
    image: np.ndarray,
    number: int,
    *,
    now: datetime | None = None,
) -> Dataset:
    """Where the model looked for a finding, over the film, as a Secondary Capture image.

    The image joins the film's study in a series of its own (Series Number 9902), names the
    film in its Source Image Sequence (0008,2112), keeps the film's Patient Orientation
    (0020,0020) when the header gave it (left empty otherwise: a guess could mirror the
    patient), and is JPEG baseline (lossy, as an illustration may be).

    Args:
        reading: The film's reading.
        ref: The film's DICOM identity.
        item: The flagged finding the map is of.
        image: RGB ``uint8`` (H, W, 3): the film as displayed with the map
            (``services.records.display_image``).
        number: Instance Number (0020,0013) in the series.
        now: When the image is made (its Content Date and Time; default: now).

    Returns:
        The image dataset, ready to write or send.
    """
    now = now or datetime.now(UTC)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=_evidence(ref),
        pixel_array=np.ascontiguousarray(image, dtype=np.uint8),
        photometric_interpretation=hd.PhotometricInterpretationValues.YBR_FULL_422,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=_uid(
            "heatmap-series", ref.study_instance_uid, reading.checkpoint_sha256
        ),
        series_number=HEATMAP_SERIES_NUMBER,
        sop_instance_uid=_uid("heatmap", ref.sop_instance_uid, reading.result_id, item.finding),
        instance_number=number,
        manufacturer=MANUFACTURER,
        patient_orientation=ref.patient_orientation or ("L", "F"),
        transfer_syntax_uid=JPEGBaseline8Bit,
    )
    if ref.patient_orientation is None:
        sc.PatientOrientation = []  # Type 2C: present and empty when not known
    sc.SeriesDescription = HEATMAP_SERIES_DESCRIPTION
    # The app reads only chest films, an unpaired part: Laterality (0020,0060) does not apply.
    sc.BodyPartExamined = ref.body_part or "CHEST"
    sc.ContentDate = DA(now.date())
    sc.ContentTime = TM(now.time().replace(tzinfo=None, microsecond=0))
    sc.BurnedInAnnotation = "NO"
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.DerivationDescription = _text(
        f"Grad-CAM of {reading.model_name} {reading.model_version} for {item.label}", 1024
    )
    sc.ImageComments = _text(
        f"Where the model looked for {item.label} ({item.value:.0%}, at or above its level of "
        f"{item.threshold:.0%}), in colour over the film as the app shows it. Decision support "
        "from a computer model, not a diagnosis.",
        10240,
    )
    source = Dataset()
    source.ReferencedSOPClassUID = ref.sop_class_uid
    source.ReferencedSOPInstanceUID = ref.sop_instance_uid
    sc.SourceImageSequence = [source]
    return sc


def status_of(sr: Dataset) -> ScanStatus | None:
    """The reading status a film without numbers states in its SR (None when it has numbers)."""
    for item in _walk(sr):
        name = item.get("ConceptNameCodeSequence")
        if name and name[0].CodeValue == READING_STATUS.value and "ConceptCodeSequence" in item:
            code = item.ConceptCodeSequence[0].CodeValue
            return ScanStatus[code.upper().replace("-", "_")]
    return None


def _walk(dataset: Dataset) -> list[Dataset]:
    items = []
    for item in dataset.get("ContentSequence", []):
        items.append(item)
        items.extend(_walk(item))
    return items
