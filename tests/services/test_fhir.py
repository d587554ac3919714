"""The FHIR R4 export (services.fhir): a patient's readings as a Bundle, read back with the
models of ``fhir.resources`` and checked against the readings every page shows.

The series holds a scored DICOM film, a side DICOM film, a film the model was unsure about,
one scored only by an older model, a child's film (findings learned from other patients) and
a doubtful-view film confirmed as frontal.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.imagingstudy import ImagingStudy
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.provenance import Provenance

from core.findings import FINDING_LIMITS
from core.imaging import decode_scan
from core.scan_reading import ScanReading, ScanStatus
from core.views import View
from services.fhir import (
    CHECKPOINT_SYSTEM,
    FINDING_SYSTEM,
    STATUS_SYSTEM,
    fhir_bundle,
    fhir_bundle_json,
    validity_note,
)
from services.imports import ScanFile, classify, import_scans, save_decoded_scan
from services.records import read_patient
from storage.profile import set_birth_year, set_display_name
from storage.sharing import grant_access
from tests.services._dicom_films import SERIAL, film

NOW = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def series(database, make_user, classifier, shared_data: Path):
    """A patient with one film of each kind; returns the patient, scan ids by role, films."""
    alice = make_user("alice", "patient")
    set_birth_year(database, alice, 1980)
    serial = shared_data / SERIAL
    films = {
        "dicom": film(serial / "p10_day17_38.png", study_date=date(2025, 3, 14)),
        "side": film(serial / "p13_day04_5.png", study_date=date(2025, 3, 15), view_position="LL"),
    }
    ids = {}
    for role, one in films.items():
        report = import_scans(
            database, alice, [ScanFile(one.name, lambda one=one: one.data, None)], classifier
        )
        [item] = report.items
        assert item.ok and item.scan_id is not None, item
        ids[role] = item.scan_id
    doubtful = serial / "p13_day07_7.png"
    [item] = import_scans(
        database,
        alice,
        [ScanFile(doubtful.name, doubtful.read_bytes, View.PA, scan_date=date(2025, 3, 16))],
        classifier,
    ).items
    ids["doubtful"] = item.scan_id
    png = decode_scan((shared_data / "samples" / "00000001_000.png").read_bytes(), "x.png")
    current = classify(classifier, png, 46)
    for role, result, day in (
        ("older", replace(current, model_version="0.9.0", checkpoint_sha256="0" * 64), 17),
        ("unsure", replace(current, abstained=True, abstain_reason="This image looks odd."), 18),
        ("child", classify(classifier, png, 4), 19),
    ):
        ids[role] = save_decoded_scan(
            database,
            alice,
            png,
            scan_date=date(2025, 3, day),
            filename=f"{role}.png",
            view=View.PA,
            result=result,
        )
    return alice, ids, films


def _resources(bundle: Bundle) -> dict[str, object]:
    return {entry.fullUrl: entry.resource for entry in bundle.entry}


def _of_type(bundle: Bundle, kind: type) -> list:
    return [entry.resource for entry in bundle.entry if isinstance(entry.resource, kind)]


def _study_of(bundle: Bundle, reading: ScanReading) -> tuple[str, ImagingStudy]:
    [found] = [
        (entry.fullUrl, entry.resource)
        for entry in bundle.entry
        if isinstance(entry.resource, ImagingStudy)
        and entry.resource.description == f"Chest X-ray, {reading.label}"
    ]
    return found


def _report_of(bundle: Bundle, study_url: str) -> DiagnosticReport:
    [report] = [
        r for r in _of_type(bundle, DiagnosticReport) if r.imagingStudy[0].reference == study_url
    ]
    return report


def test_bundle_renders_every_reading(database, classifier, series) -> None:
    alice, ids, films = series
    text = fhir_bundle_json(database, alice, classifier)
    # Read back with the R4 models: what a FHIR server would parse.
    bundle = Bundle.model_validate_json(text)
    assert bundle.type == "collection"
    record = read_patient(database, alice, alice.user_id, classifier)
    readings = {role: record.reading(scan_id) for role, scan_id in ids.items()}
    assert readings["dicom"].status is ScanStatus.SCORED
    assert readings["side"].status is ScanStatus.NOT_SCORED_VIEW
    assert readings["doubtful"].status is ScanStatus.VIEW_UNCERTAIN
    assert readings["older"].status is ScanStatus.AWAITING_RESCORE
    assert readings["unsure"].status is ScanStatus.UNSURE
    assert any(item.greyed for item in readings["child"].findings)

    resources = _resources(bundle)
    [patient] = _of_type(bundle, Patient)
    # Pseudonymous: no name without a display name, never the username nor the hospital's id.
    assert patient.name is None and patient.identifier is None
    assert patient.birthDate == "1980"
    assert "alice" not in text and "HOSP-0001" not in text and "Doe" not in text
    patient_url = next(url for url, r in resources.items() if r is patient)
    assert len(_of_type(bundle, ImagingStudy)) == len(_of_type(bundle, DiagnosticReport)) == 6
    shown = sum(len(r.findings) for r in record.readings)
    assert len(_of_type(bundle, Observation)) == shown > 0

    [device] = _of_type(bundle, Device)
    assert device.deviceName[0].name == classifier.info.name
    assert device.version[0].value == classifier.info.version
    assert [(i.system, i.value) for i in device.identifier] == [
        (CHECKPOINT_SYSTEM, classifier.info.sha256)
    ]
    device_url = next(url for url, r in resources.items() if r is device)

    for role, reading in readings.items():
        study_url, study = _study_of(bundle, reading)
        assert study.subject.reference == patient_url
        assert study.started.isoformat().startswith(reading.scan_date.isoformat())
        report = _report_of(bundle, study_url)
        assert report.status == "final", role
        assert report.conclusion == reading.headline, role
        [status] = report.conclusionCode
        assert (status.coding[0].system, status.coding[0].code) == (
            STATUS_SYSTEM,
            reading.status.value,
        )
        assert report.subject.reference == patient_url
        if not reading.has_numbers:
            # Not scored or unsure: the reason, and no value anywhere.
            assert report.result is None, role
            assert reading.reason is not None and reading.reason[1:] in report.conclusion
            continue
        observations = [resources[ref.reference] for ref in report.result]
        assert [o.code.coding[0].code for o in observations] == [
            item.finding for item in reading.findings
        ]
        for obs, item in zip(observations, reading.findings, strict=True):
            assert isinstance(obs, Observation)
            assert obs.code.coding[0].system == FINDING_SYSTEM
            assert obs.valueQuantity.code == "%" and obs.valueQuantity.unit == "%"
            assert float(obs.valueQuantity.value) == pytest.approx(item.value * 100, abs=0.005)
            assert float(obs.referenceRange[0].high.value) == pytest.approx(
                item.threshold * 100, abs=0.005
            )
            expected = "IND" if item.greyed else ("H" if item.flagged else "N")
            assert obs.interpretation[0].coding[0].code == expected, (role, item)
            assert obs.device.reference == device_url
            assert reading.model_version in obs.method.text
            assert reading.checkpoint_sha256 in obs.method.text
            notes = [note.text for note in obs.note]
            assert notes[0] == validity_note(item, reading.population)
            if item.note:
                assert item.note in notes
            if item.finding in FINDING_LIMITS:
                assert FINDING_LIMITS[item.finding] in notes
            if reading.status is ScanStatus.VIEW_UNCERTAIN:
                assert reading.reason in notes
            assert obs.derivedFrom[0].reference == study_url

    # A child's findings learned from adults are indeterminate, never normal nor high.
    child = readings["child"]
    greyed = [item for item in child.findings if item.greyed]
    assert greyed and all("says little about a child's film" in item.note for item in greyed)
    # Every report of the model is attributed to it.
    [provenance] = _of_type(bundle, Provenance)
    assert provenance.agent[0].who.reference == device_url
    targets = {t.reference for t in provenance.target}
    for role in ("dicom", "doubtful", "unsure", "child"):
        study_url, _ = _study_of(bundle, readings[role])
        assert resources and _report_of(bundle, study_url)
        report_url = next(url for url, r in resources.items() if r is _report_of(bundle, study_url))
        assert report_url in targets


def test_a_dicom_film_is_referenced_by_its_uids(database, classifier, series) -> None:
    alice, ids, films = series
    bundle = fhir_bundle(database, alice, alice.user_id, classifier, now=NOW)
    record = read_patient(database, alice, alice.user_id, classifier)
    for role in ("dicom", "side"):
        _, study = _study_of(bundle, record.reading(ids[role]))
        one = films[role]
        assert [(i.system, i.value) for i in study.identifier] == [
            ("urn:dicom:uid", f"urn:oid:{one.study_uid}")
        ]
        [series_] = study.series
        assert series_.uid == one.series_uid
        assert series_.modality.code == "CR"
        assert [i.uid for i in series_.instance] == [one.sop_uid]
        assert series_.instance[0].sopClass.code == "urn:oid:1.2.840.10008.5.1.4.1.1.1"
    # A PNG has no DICOM identity.
    _, png_study = _study_of(bundle, record.reading(ids["child"]))
    assert png_study.identifier is None and png_study.series is None
    # Stable ids: the same record exported twice gives the same resources.
    again = fhir_bundle(database, alice, alice.user_id, classifier, now=NOW)
    assert [e.fullUrl for e in again.entry] == [e.fullUrl for e in bundle.entry]


def test_display_name_and_clinician_export(database, make_user, classifier, series) -> None:
    alice, ids, _ = series
    set_display_name(database, alice, "Alice Example")
    doctor = make_user("dr.x", "clinician")
    grant_access(database, alice, "dr.x")
    bundle = Bundle.model_validate_json(
        fhir_bundle(database, doctor, alice.user_id, classifier).model_dump_json()
    )
    [patient] = _of_type(bundle, Patient)
    assert [name.text for name in patient.name] == ["Alice Example"]
    assert len(_of_type(bundle, DiagnosticReport)) == len(ids)


def test_cli_exports_fhir(cli, settings_env, database, series) -> None:
    result = cli(settings_env, "export", "--user", "alice", "--format", "fhir")
    assert result.returncode == 0, result.stderr
    bundle = Bundle.model_validate_json(result.stdout)
    assert len(_of_type(bundle, DiagnosticReport)) == 6
    assert json.loads(result.stdout)["resourceType"] == "Bundle"
