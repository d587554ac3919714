"""A patient's readings as a FHIR R4 Bundle, for record systems and patients' portals.

The bundle renders each scan's one reading (``core.scan_reading``), as every page does:

- ``Patient``: pseudonymous (an id derived from the app's account, no identifier, no
  username), with the display name the patient chose for reports when they chose one, and the
  birth year when it is known (the population the numbers are read for depends on it).
- ``Device``: each model whose results are read, with its name, version and checkpoint
  SHA-256 (as an identifier).
- ``ImagingStudy`` per scan: the date, the view, and for a film that came as DICOM its Study,
  Series and SOP Instance UIDs, modality and SOP class, so a PACS viewer can open it.
- ``DiagnosticReport`` per scan, status ``final``: the conclusion is the reading's headline,
  the conclusion code what became of the scan (scored, view uncertain, not scored: view,
  model unsure, awaiting re-score). A film without numbers has a report too, whose
  conclusion says why, and no result.
- ``Observation`` per finding shown: the probability in percent (UCUM ``%``) as
  ``valueQuantity``, the level at which the model suggests a closer look as the reference
  range's high end, the interpretation ``H`` when flagged, ``N`` when not, and ``IND``
  (indeterminate) for a finding learned from other patients than this one (shown greyed on
  the pages: its number says little about this patient, so it is neither high nor normal);
  the model as ``device`` and ``method``; a note on its validity for the patient's population
  and the finding's own note.
- ``Provenance`` per model: the reports and observations it produced, with the model's
  ``Device`` as the agent. R4 allows no ``Device`` as a ``DiagnosticReport.performer``
  (Practitioner, Organization or CareTeam only), so the report's author is said here, as the
  FHIR specification recommends for generated content.

The models are those of ``fhir.resources``: its ``R4B`` package, since version 7 the only
maintained one close to R4 (pydantic 2). For the six resources used here R4B and R4 (4.0.1)
define the same elements, so the JSON is valid R4. Identifiers are stable UUIDs derived from
the account and scan, so an exported bundle loaded again updates rather than duplicates.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fhir.resources.R4B.bundle import Bundle, BundleEntry
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.provenance import Provenance
from fhir.resources.R4B.resource import Resource

from core.findings import FINDING_LIMITS
from core.reading import PATIENT_FILM
from core.scan_reading import FindingShown, ScanReading, ScanStatus
from core.views import VIEW_LABELS
from services.dicom_refs import DicomRef, dicom_refs
from services.records import PatientRecord, read_patient
from storage.actor import Actor
from storage.db import Database
from storage.profile import get_display_name

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from models.inference import Classifier

#: The app's own code systems (findings) and identifier systems (model checkpoints).
FINDING_SYSTEM = "urn:cxr-tracker:fhir:finding"
CHECKPOINT_SYSTEM = "urn:cxr-tracker:fhir:checkpoint-sha256"
#: What became of a scan (``core.scan_reading.ScanStatus``), as each report's conclusion code.
STATUS_SYSTEM = "urn:cxr-tracker:fhir:reading-status"
#: Where the app's stable resource ids come from (UUID version 5 under this namespace).
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:cxr-tracker:fhir")

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"
DICOM_UID = "urn:dicom:uid"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
REPORT_CATEGORY = "http://terminology.hl7.org/CodeSystem/v2-0074"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

#: The ``interpretation`` codes: flagged, not flagged, learned from other patients.
HIGH, NORMAL, INDETERMINATE = "H", "N", "IND"
_INTERPRETATION_WORDS = {HIGH: "High", NORMAL: "Normal", INDETERMINATE: "Indeterminate"}
#: What the reference range's high end is.
LEVEL_TEXT = "The level at or above which the model suggests a closer look."


def fhir_bundle_json(db: Database, actor: Actor, classifier: Classifier | None) -> str:
    """The actor's own readings as a FHIR R4 Bundle, for the My scans download.

    Args:
        db: Database handle.
        actor: The patient.
        classifier: The current model (its version picks the result read), or None.

    Returns:
        The bundle as JSON text.

    Raises:
        storage.policy.AccessDenied: The actor may not read these records.
    """
    return bundle_json(fhir_bundle(db, actor, actor.user_id, classifier))


def bundle_json(bundle: Bundle) -> str:
    """A bundle as FHIR JSON text (empty elements left out)."""
    return str(bundle.model_dump_json(exclude_none=True))


def fhir_bundle(
    db: Database,
    actor: Actor,
    patient_id: int,
    classifier: Classifier | None,
    *,
    now: datetime | None = None,
) -> Bundle:
    """A patient's readings as a FHIR R4 Bundle (type ``collection``).

    The scans are listed and read as on every page (``services.records.read_patient``,
    audited), and the DICOM films' identifiers come from the record's sealed metadata (read
    once, audited; never the images).

    Args:
        db: Database handle.
        actor: The patient, or a clinician with access.
        patient_id: Whose readings.
        classifier: The current model, or None.
        now: When the bundle is made (default: now, UTC).

    Returns:
        The bundle.

    Raises:
        storage.policy.AccessDenied: The actor may not read these records.
    """
    record = read_patient(db, actor, patient_id, classifier)
    name = get_display_name(db, actor, patient_id)
    refs = dicom_refs(db, actor, record.scans)
    return bundle_of(record, display_name=name, refs=refs, now=now)


def bundle_of(
    record: PatientRecord,
    *,
    display_name: str | None,
    refs: Mapping[int, DicomRef],
    now: datetime | None = None,
) -> Bundle:
    """The bundle of a record already read (:func:`fhir_bundle` without the storage calls).

    Args:
        record: The patient's record with its readings.
        display_name: The name the patient chose, or None (the Patient has no name then).
        refs: The DICOM identity of the scans that have one.
        now: When the bundle is made (default: now, UTC).

    Returns:
        The bundle.
    """
    now = now or datetime.now(UTC)
    patient_url = _url("patient", record.patient_id)
    entries: list[tuple[str, Resource]] = [
        (patient_url, _patient(record, patient_url, display_name))
    ]
    devices: dict[tuple[str, str, str], str] = {}
    produced: dict[str, list[str]] = {}
    for scan, reading in zip(record.scans, record.readings, strict=True):
        base = f"{record.patient_id}/scan/{scan.id}"
        study_url = _url("study", base)
        entries.append(
            (study_url, _imaging_study(reading, study_url, patient_url, refs.get(scan.id)))
        )
        device_url = _device_url(reading, devices, entries)
        observations = []
        for item in reading.findings:
            url = _url("observation", f"{base}/{item.finding}")
            entries.append(
                (
                    url,
                    _observation(reading, item, url, patient_url, study_url, device_url, now=now),
                )
            )
            observations.append(url)
        report_url = _url("report", base)
        entries.append(
            (report_url, _report(reading, report_url, patient_url, study_url, observations, now))
        )
        if device_url is not None:
            produced.setdefault(device_url, []).extend([report_url, *observations])
    for device_url, targets in produced.items():
        url = _url("provenance", f"{record.patient_id}/{device_url}")
        entries.append((url, _provenance(url, device_url, targets, now)))
    return Bundle(
        id=str(uuid.uuid4()),
        type="collection",
        timestamp=now,
        entry=[BundleEntry(fullUrl=url, resource=resource) for url, resource in entries],
    )


def _url(kind: str, key: object) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{kind}/{key}')}"


def _id(url: str) -> str:
    return url.removeprefix("urn:uuid:")


def _ref(url: str, display: str | None = None) -> dict[str, str]:
    return {"reference": url} if display is None else {"reference": url, "display": display}


def _patient(record: PatientRecord, url: str, display_name: str | None) -> Patient:
    fields: dict[str, Any] = {"id": _id(url), "active": True}
    if display_name:
        fields["name"] = [{"text": display_name}]
    if record.birth_year is not None:
        fields["birthDate"] = f"{record.birth_year:04d}"
    return Patient(**fields)


def _device_url(
    reading: ScanReading,
    devices: dict[tuple[str, str, str], str],
    entries: list[tuple[str, Resource]],
) -> str | None:
    if reading.model_name is None or reading.model_version is None:
        return None
    key = (reading.model_name, reading.model_version, reading.checkpoint_sha256 or "")
    if key not in devices:
        url = _url("device", "/".join(key))
        devices[key] = url
        entries.append((url, _device(url, *key)))
    return devices[key]


def _device(url: str, name: str, version: str, sha256: str) -> Device:
    fields: dict[str, Any] = {
        "id": _id(url),
        "status": "active",
        "deviceName": [{"name": name, "type": "model-name"}],
        "version": [{"value": version}],
        "type": {"text": "Software: chest X-ray classifier (decision support)"},
    }
    if sha256:
        fields["identifier"] = [{"system": CHECKPOINT_SYSTEM, "value": sha256}]
    return Device(**fields)


def _imaging_study(
    reading: ScanReading, url: str, patient_url: str, ref: DicomRef | None
) -> ImagingStudy:
    fields: dict[str, Any] = {
        "id": _id(url),
        "status": "available",
        "subject": _ref(patient_url),
        "started": reading.scan_date.isoformat(),
        "description": f"Chest X-ray, {reading.label}",
        "numberOfSeries": 1,
        "numberOfInstances": 1,
    }
    if ref is not None:
        modality = {"system": DICOM_DCM, "code": ref.modality or "OT"}
        fields["identifier"] = [{"system": DICOM_UID, "value": f"urn:oid:{ref.study_instance_uid}"}]
        fields["modality"] = [modality]
        fields["series"] = [
            {
                "uid": ref.series_instance_uid,
                "modality": modality,
                "description": VIEW_LABELS[reading.view],
                "numberOfInstances": 1,
                "bodySite": {"system": SNOMED, "code": "43799004", "display": "Chest"},
                "instance": [
                    {
                        "uid": ref.sop_instance_uid,
                        "sopClass": {"system": DICOM_UID, "code": f"urn:oid:{ref.sop_class_uid}"},
                    }
                ],
            }
        ]
    return ImagingStudy(**fields)


def _model_words(reading: ScanReading) -> str:
    words = f"{reading.model_name}, version {reading.model_version}"
    if reading.checkpoint_sha256:
        words += f" (checkpoint SHA-256 {reading.checkpoint_sha256})"
    return words


def _interpretation(item: FindingShown) -> str:
    if item.greyed:
        return INDETERMINATE
    return HIGH if item.flagged else NORMAL


def validity_note(item: FindingShown, population: str) -> str:
    """Whether a finding's number holds for the patient's population, in one or two sentences.

    Args:
        item: The finding as shown.
        population: The patient's population at the scan (``child``, ``adult``, ``unknown``).

    Returns:
        The note: shown to work for the patient's population, or learned from others (the
        finding's own note), or whom it was learned from when the age is not known.
    """
    learned = (
        f"learned from {item.learned_from}"
        if item.learned_from
        else "not checked on the model's test films"
    )
    if item.valid is False and item.note:
        return item.note
    if item.valid is True:
        whom = PATIENT_FILM.get(population, "this patient's film")
        return f"Shown to work for {whom} ({learned})."
    return (
        f"The patient's age is not known, so it is not known whether this number holds for "
        f"them: {item.label} was {learned}."
    )


def _observation(
    reading: ScanReading,
    item: FindingShown,
    url: str,
    patient_url: str,
    study_url: str,
    device_url: str | None,
    *,
    now: datetime,
) -> Observation:
    code = _interpretation(item)
    notes = [validity_note(item, reading.population)]
    if item.finding in FINDING_LIMITS:
        notes.append(FINDING_LIMITS[item.finding])
    if reading.status is ScanStatus.VIEW_UNCERTAIN and reading.reason:
        notes.append(reading.reason)
    fields: dict[str, Any] = {
        "id": _id(url),
        "status": "final",
        "category": [
            {"coding": [{"system": OBSERVATION_CATEGORY, "code": "imaging", "display": "Imaging"}]}
        ],
        "code": {
            "coding": [{"system": FINDING_SYSTEM, "code": item.finding, "display": item.label}],
            "text": f"{item.label}: the model's probability",
        },
        "subject": _ref(patient_url),
        "effectiveDateTime": reading.scan_date.isoformat(),
        "issued": now,
        "valueQuantity": _percent(item.value),
        "interpretation": [
            {
                "coding": [
                    {
                        "system": INTERPRETATION,
                        "code": code,
                        "display": _INTERPRETATION_WORDS[code],
                    }
                ]
            }
        ],
        "referenceRange": [{"high": _percent(item.threshold), "text": LEVEL_TEXT}],
        "derivedFrom": [_ref(study_url)],
        "note": [{"text": text} for text in notes],
    }
    if device_url is not None:
        fields["device"] = _ref(device_url, reading.model_name)
        fields["method"] = {"text": f"Computer model {_model_words(reading)}"}
    return Observation(**fields)


def _percent(probability: float) -> dict[str, Any]:
    return {"value": round(probability * 100, 2), "unit": "%", "system": UCUM, "code": "%"}


def _report(
    reading: ScanReading,
    url: str,
    patient_url: str,
    study_url: str,
    observations: Sequence[str],
    now: datetime,
) -> DiagnosticReport:
    fields: dict[str, Any] = {
        "id": _id(url),
        "status": "final",
        "category": [
            {"coding": [{"system": REPORT_CATEGORY, "code": "RAD", "display": "Radiology"}]}
        ],
        "code": {
            "coding": [{"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}],
            "text": "Chest X-ray reading by a computer model (decision support)",
        },
        "subject": _ref(patient_url),
        "effectiveDateTime": reading.scan_date.isoformat(),
        "issued": now,
        "imagingStudy": [_ref(study_url)],
        "conclusion": reading.headline,
        "conclusionCode": [
            {
                "coding": [
                    {
                        "system": STATUS_SYSTEM,
                        "code": reading.status.value,
                        "display": reading.status_words,
                    }
                ],
                "text": reading.status_words,
            }
        ],
    }
    if observations:
        fields["result"] = [_ref(obs) for obs in observations]
    return DiagnosticReport(**fields)


def _provenance(url: str, device_url: str, targets: Sequence[str], now: datetime) -> Provenance:
    performer = {"system": PARTICIPANT_TYPE, "code": "performer", "display": "Performer"}
    fields: dict[str, Any] = {
        "id": _id(url),
        "target": [_ref(target) for target in targets],
        "recorded": now,
        "agent": [{"type": {"coding": [performer]}, "who": _ref(device_url)}],
    }
    return Provenance(**fields)
