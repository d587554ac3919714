"""The hospital's PACS (services.pacs) against a real Orthanc with its DICOMweb plugin
(storage/ORTHANC_SETUP.sh; ``TEST_PACS_URL``, skipped where unset on a developer's machine,
failed in CI): search by Patient ID and dates (QIDO-RS), import the chosen series (WADO-RS)
through the import path, send a film's SR back (STOW-RS).
"""

from __future__ import annotations

import io
import os
import uuid
from dataclasses import replace
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass
from pydicom.uid import ComprehensiveSRStorage

from core.scan_reading import ScanStatus
from core.settings import SettingsError, load_settings
from core.views import View
from core.words import plural
from services.imports import ScanFile, import_scans
from services.media import IdentityNotConfirmed
from services.pacs import (
    Pacs,
    PacsNotConfigured,
    PacsUnavailable,
    PatientIdNotYours,
    import_from_pacs,
    record_patient_ids,
    search_pacs,
    send_srs,
)
from services.records import read_patient
from storage import audit
from storage.policy import AccessDenied
from storage.profile import set_birth_year
from storage.sharing import grant_access
from tests.dicom_files import report_dataset
from tests.services._dicom_check import dciodvfy_errors
from tests.services._dicom_films import SERIAL, Film, film


def pacs_url_or_skip() -> str:
    """``TEST_PACS_URL``; skips where it is unset on a developer's machine, fails in CI."""
    url = os.environ.get("TEST_PACS_URL")
    if url:
        return url
    reason = "TEST_PACS_URL is unset (run storage/ORTHANC_SETUP.sh and export the URL it prints)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + "; CI must test the PACS exchange")
    pytest.skip(reason)


def pacs_of(url: str, name: str = "the test PACS") -> Pacs:
    """The app's view of the test PACS: its URL without the credentials, and the credentials."""
    parts = urlsplit(url)
    bare = parts._replace(netloc=f"{parts.hostname}:{parts.port}").geturl()
    return Pacs(bare, name, parts.username, parts.password)


@pytest.fixture
def pacs() -> Pacs:
    return pacs_of(pacs_url_or_skip())


@pytest.fixture
def hospital(pacs: Pacs) -> DICOMwebClient:
    """The hospital side: a DICOMweb client that files the test films in the PACS."""
    return DICOMwebClient(
        pacs.url, session=create_session_from_user_pass(pacs.username, pacs.password)
    )


def _store(client: DICOMwebClient, *films: Film) -> None:
    client.store_instances([pydicom.dcmread(io.BytesIO(one.data)) for one in films])


def _report(patient_id: str, study_uid: str) -> pydicom.Dataset:
    """A radiologist's Basic Text SR in the study: a document, not a film."""
    ds = report_dataset(
        PatientID=patient_id,
        PatientName="Doe^Jane",
        PatientBirthDate="19800101",
        PatientSex="F",
        StudyInstanceUID=study_uid,
        StudyDate="20250314",
        StudyTime="1015",
        SeriesNumber=50,
        ValueType="CONTAINER",
        ContentDate="20250314",
        ContentTime="1030",
        ContinuityOfContent="SEPARATE",
    )
    del ds.StudyID  # as the hospital's report was sent: without one
    return ds


@pytest.fixture
def hospital_films(hospital: DICOMwebClient, shared_data: Path):
    """One patient's studies in the PACS (a new Patient ID per test), and another patient's.

    Study 2025-03-14: a chest PA series of two films, a lateral series, a hip series and the
    radiologist's report. Study 2023-05-01: one PA film. Study 2024-06-01: the film on the
    patient's CD. Another patient: one study on 2025-03-14.
    """
    serial = shared_data / SERIAL
    patient = f"HOSP-{uuid.uuid4().hex[:8]}"
    march = pydicom.uid.generate_uid()
    chest = pydicom.uid.generate_uid()
    one = {"patient_id": patient, "study_uid": march, "study_date": date(2025, 3, 14)}
    films = {
        "pa1": film(serial / "p10_day17_38.png", series_uid=chest, instance_number=1, **one),
        "pa2": film(serial / "p10_day19_39.png", series_uid=chest, instance_number=2, **one),
        "side": film(serial / "p13_day04_5.png", view_position="LL", series_number=2, **one),
        "hip": film(serial / "p10_day27_40.png", body_part="HIP", series_number=3, **one),
        "old": film(serial / "p13_day04_4.png", patient_id=patient, study_date=date(2023, 5, 1)),
        "cd": film(serial / "p13_day07_6.png", patient_id=patient, study_date=date(2024, 6, 1)),
        "other": film(serial / "p13_day09_8.png", patient_id=f"{patient}-X"),
    }
    _store(hospital, *films.values())
    hospital.store_instances([_report(patient, march)])
    return patient, films


@pytest.fixture
def patient_with_cd(database, make_user, classifier, hospital_films):
    """A patient who imported the film of their CD: its header carries their Patient ID."""
    patient_id, films = hospital_films
    alice = make_user("alice", "patient")
    cd = films["cd"]
    [item] = import_scans(
        database, alice, [ScanFile(cd.name, lambda: cd.data, None)], classifier
    ).items
    assert item.ok, item
    return alice, patient_id, films, item.scan_id


def test_search_lists_the_patients_studies_as_a_cd_is(database, pacs, patient_with_cd) -> None:
    alice, patient_id, films, _ = patient_with_cd
    assert record_patient_ids(database, alice) == (patient_id,)
    check = search_pacs(database, alice, pacs, patient_id, date(2025, 1, 1), date(2025, 12, 31))
    assert check.listing.kind == "pacs" and check.pacs == "the test PACS"
    [study] = check.listing.studies
    assert study.uid == films["pa1"].study_uid and study.date == date(2025, 3, 14)
    assert [s.uid for s in study.series] == [films["pa1"].series_uid, films["side"].series_uid]
    chest, side = study.series
    assert chest.preselected and side.preselected
    assert [i.sop_instance_uid for i in chest.instances] == [
        films["pa1"].sop_uid,
        films["pa2"].sop_uid,
    ]
    assert chest.views == (View.PA,) and side.views == (View.LATERAL,)
    assert chest.patient.patient_id == patient_id and chest.patient.age == 45
    # What is left out is said as a CD's listing says it.
    assert any("hip" in sentence for sentence in check.listing.skipped), check.listing.skipped
    assert any("structured report" in sentence for sentence in check.listing.skipped)
    assert not check.doubts and check.names == ("Jane Doe",)

    # Without dates every study is listed; the CD's film is known already.
    everything = search_pacs(database, alice, pacs, patient_id)
    assert [s.date for s in everything.listing.studies] == [
        date(2023, 5, 1),
        date(2024, 6, 1),
        date(2025, 3, 14),
    ]
    assert films["cd"].sop_uid in everything.known


def test_a_patient_searches_only_their_own_patient_id(database, pacs, patient_with_cd) -> None:
    alice, patient_id, _, _ = patient_with_cd
    for other in (f"{patient_id}-X", "*", f"{patient_id[:4]}*", ""):
        with pytest.raises(PatientIdNotYours):
            search_pacs(database, alice, pacs, other)


def test_import_brings_films_with_header_dates_and_views(
    database, classifier, pacs, patient_with_cd
) -> None:
    alice, patient_id, films, cd_scan = patient_with_cd
    check = search_pacs(database, alice, pacs, patient_id)
    chosen = check.listing.preselected
    # Three chest films in March, the 2023 film, and the CD's film (already in the record).
    assert sum(s.image_count for s in chosen) == 5
    done = []
    report = import_from_pacs(
        database, alice, pacs, check, chosen, classifier, on_progress=lambda *a: done.append(a)
    )
    assert report.all_ok and len(report.items) == 5
    [known] = [item for item in report.items if item.already_saved]
    assert known.scan_id == cd_scan
    assert len(done) == 4
    record = read_patient(database, alice, alice.user_id, classifier)
    by_file = {scan.filename: scan for scan in record.scans}
    for role, view, day in (
        ("pa1", View.PA, date(2025, 3, 14)),
        ("pa2", View.PA, date(2025, 3, 14)),
        ("side", View.LATERAL, date(2025, 3, 14)),
        ("old", View.PA, date(2023, 5, 1)),
    ):
        scan = by_file[f"{films[role].sop_uid}.dcm"]
        assert (scan.view, scan.scan_date) == (view, day), role
        reading = record.reading(scan.id)
        expected = ScanStatus.NOT_SCORED_VIEW if view is View.LATERAL else reading.status
        assert reading.status is expected
        assert reading.has_numbers is (view is not View.LATERAL), role
    imported = [item for item in report.items if not item.already_saved]
    assert all(item.reading is not None for item in imported)

    # Again: every film is known, nothing is retrieved or stored twice.
    again = search_pacs(database, alice, pacs, patient_id)
    second = import_from_pacs(database, alice, pacs, again, again.listing.preselected, classifier)
    assert all(item.already_saved for item in second.items) and len(second.items) == 5
    assert len(read_patient(database, alice, alice.user_id, classifier).scans) == 5
    actions = [event.action for event in audit.list_events(database, _admin(database))]
    assert actions.count("pacs_search") == 2 and actions.count("pacs_import") == 2


def _admin(database):
    from storage import accounts
    from tests.storage.conftest import ADMIN_PASSWORD

    return accounts.authenticate(database, "admin", ADMIN_PASSWORD, None)


def test_films_of_someone_else_need_confirmation(
    database, classifier, pacs, patient_with_cd
) -> None:
    alice, patient_id, _, _ = patient_with_cd
    set_birth_year(database, alice, 1990)  # the films say 1980
    check = search_pacs(database, alice, pacs, patient_id, date(2025, 1, 1))
    assert check.needs_confirmation and "1980" in check.doubts[0]
    with pytest.raises(IdentityNotConfirmed):
        import_from_pacs(database, alice, pacs, check, check.listing.preselected, classifier)
    report = import_from_pacs(
        database,
        alice,
        pacs,
        check,
        check.listing.preselected,
        classifier,
        identity_confirmed=True,
    )
    assert report.all_ok and len(report.items) == 3


def test_a_clinician_sends_a_films_sr_to_the_pacs(
    database, make_user, classifier, pacs, hospital, patient_with_cd, tmp_path
) -> None:
    alice, patient_id, films, _ = patient_with_cd
    check = search_pacs(database, alice, pacs, patient_id, date(2025, 1, 1))
    import_from_pacs(database, alice, pacs, check, check.listing.preselected, classifier)
    record = read_patient(database, alice, alice.user_id, classifier)
    pa = next(s.id for s in record.scans if s.filename == f"{films['pa1'].sop_uid}.dcm")
    doctor = make_user("dr.x", "clinician")
    with pytest.raises(AccessDenied):  # no grant yet
        send_srs(database, doctor, pacs, alice.user_id, classifier, scan_ids=[pa])
    with pytest.raises(AccessDenied):  # patients do not send
        send_srs(database, alice, pacs, alice.user_id, classifier, scan_ids=[pa])
    grant_access(database, alice, "dr.x")

    sent = send_srs(database, doctor, pacs, alice.user_id, classifier, scan_ids=[pa])

    [item] = sent.export.files
    maps = tuple(str(heatmap.dataset.SOPInstanceUID) for heatmap in item.heatmaps)
    assert set(sent.stored) == {item.dataset.SOPInstanceUID, *maps} and sent.failed == ()
    assert sent.reports_stored == 1
    with_maps = f" with {plural(len(maps), 'heatmap')}" if maps else ""
    assert sent.summary == f"1 report{with_maps} was sent to the test PACS."
    # Each flagged finding's heatmap is filed in the film's study too.
    for heatmap in item.heatmaps:
        found = hospital.search_for_instances(
            films["pa1"].study_uid,
            search_filters={"SOPInstanceUID": heatmap.dataset.SOPInstanceUID},
        )
        assert len(found) == 1
    # The PACS files it in the film's study, under the same patient.
    study = films["pa1"].study_uid
    series = hospital.search_for_series(study, search_filters={"Modality": "SR"})
    series_uid = item.dataset.SeriesInstanceUID
    assert series_uid in {one["0020000E"]["Value"][0] for one in series}
    stored = hospital.retrieve_instance(study, series_uid, item.dataset.SOPInstanceUID)
    assert stored.SOPClassUID == ComprehensiveSRStorage and stored.PatientID == patient_id
    studies = hospital.search_for_studies(search_filters={"PatientID": patient_id})
    assert [s["0020000D"]["Value"][0] for s in studies].count(study) == 1
    path = tmp_path / "from-pacs.dcm"
    stored.save_as(path, enforce_file_format=True)
    assert dciodvfy_errors(path) == []
    events = [
        e for e in audit.list_events(database, _admin(database)) if e.action == "pacs_send_sr"
    ]
    assert len(events) == 1 and events[0].actor_username == "dr.x"


def test_pacs_failures_are_one_sentence(database, pacs, patient_with_cd) -> None:
    alice, patient_id, _, _ = patient_with_cd
    wrong = replace(pacs, password="wrong password")
    with pytest.raises(PacsUnavailable, match="refused the app's credentials"):
        search_pacs(database, alice, wrong, patient_id)
    away = replace(pacs, url="http://127.0.0.1:9/dicom-web")
    with pytest.raises(PacsUnavailable, match="could not be reached"):
        search_pacs(database, alice, away, patient_id)


def test_pacs_settings(tmp_path) -> None:
    base = {"DATA_DIR": str(tmp_path)}
    with pytest.raises(PacsNotConfigured):
        Pacs.from_settings(load_settings(base))
    settings = load_settings(
        {
            **base,
            "PACS_URL": "https://pacs.example.org/dicom-web/",
            "PACS_USERNAME": "app",
            "PACS_PASSWORD": "pw",
            "PACS_NAME": "St Mary's PACS",
        }
    )
    pacs = Pacs.from_settings(settings)
    assert pacs == Pacs("https://pacs.example.org/dicom-web", "St Mary's PACS", "app", "pw")
    assert "pw" not in repr(settings) and "pw" not in repr(pacs)
    with pytest.raises(SettingsError, match="credentials"):
        load_settings({**base, "PACS_URL": "https://app:pw@pacs.example.org/dicom-web"})
    with pytest.raises(SettingsError, match="http"):
        load_settings({**base, "PACS_URL": "ftp://pacs.example.org"})
    production = {
        **base,
        "APP_ENV": "production",
        "MASTER_KEY": "x" * 44,
        "COOKIE_SECRET": "y" * 40,
        "ARGON2_PROFILE": "production",
    }
    with pytest.raises(SettingsError, match="https"):
        load_settings({**production, "PACS_URL": "http://pacs.example.org/dicom-web"})
    assert load_settings({**production, "PACS_URL": "http://127.0.0.1:8042/dicom-web"}).pacs_url
