"""A clinician adds a patient's films from the hospital's PACS (a real Orthanc,
``TEST_PACS_URL``): only with the patient's consent on an active grant; the films are the
patient's, and the patient's access list says "dr.x added 3 films from St Mary's PACS"."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from core.access_summary import summarise_access
from services.pacs import Pacs, PatientIdInvalid, import_from_pacs, search_pacs
from services.records import read_patient
from storage import access_log, schema
from storage.policy import AccessDenied
from storage.sharing import grant_access
from tests.services.test_pacs import hospital, hospital_films, pacs_of, pacs_url_or_skip

__all__ = ["hospital", "hospital_films"]  # fixtures used here


@pytest.fixture
def pacs() -> Pacs:
    return pacs_of(pacs_url_or_skip(), "St Mary's PACS")


def test_a_clinician_the_patient_allowed_adds_their_films(
    database, make_user, classifier, pacs, hospital_films
) -> None:
    patient_id, films = hospital_films
    alice, doctor = make_user("alice"), make_user("dr.x", "clinician")
    grant_access(database, alice, "dr.x", allow_adding_films=True)

    # The clinician searches by the hospital's Patient ID (exact; no wildcard).
    check = search_pacs(
        database, doctor, pacs, patient_id, date(2025, 1, 1), None, patient=alice.user_id
    )
    assert check.record == alice.user_id
    [study] = check.listing.studies
    chosen = [s for s in study.series if s.preselected]
    assert sum(s.image_count for s in chosen) == 3
    for typed in ("*", f"{patient_id[:4]}*", ""):
        with pytest.raises(PatientIdInvalid):
            search_pacs(database, doctor, pacs, typed, patient=alice.user_id)

    done: list[object] = []
    report = import_from_pacs(
        database,
        doctor,
        pacs,
        check,
        chosen,
        classifier,
        on_progress=lambda *a: done.append(a),
    )
    assert report.all_ok and len(report.items) == 3 and len(done) == 3

    # The films are alice's: she reads them, with the header dates, and each is read.
    record = read_patient(database, alice, alice.user_id, classifier)
    assert {scan.filename for scan in record.scans} == {
        f"{films[role].sop_uid}.dcm" for role in ("pa1", "pa2", "side")
    }
    assert {scan.scan_date for scan in record.scans} == {date(2025, 3, 14)}
    # Her access list says who added how many films from where.
    log = access_log.access_log(database, alice, alice.user_id)
    sentences = [day.sentence for day in summarise_access(log, None)]
    assert any(
        s.startswith("dr.x ") and "added 3 films from St Mary's PACS" in s for s in sentences
    ), sentences

    # Importing again stores nothing twice.
    again = import_from_pacs(database, doctor, pacs, check, chosen, classifier)
    assert all(item.already_saved for item in again.items)
    assert len(read_patient(database, alice, alice.user_id, classifier).scans) == 3


def test_without_the_patients_consent_a_clinician_cannot_search_nor_add(
    database, make_user, classifier, pacs, hospital_films
) -> None:
    patient_id, _ = hospital_films
    alice, doctor = make_user("alice"), make_user("dr.x", "clinician")
    grant_access(database, alice, "dr.x")  # reading only
    with pytest.raises(AccessDenied):
        search_pacs(database, doctor, pacs, patient_id, patient=alice.user_id)

    # A listing made while the consent held is refused once the grant has expired.
    grant = grant_access(database, alice, "dr.x", allow_adding_films=True)
    check = search_pacs(database, doctor, pacs, patient_id, patient=alice.user_id)
    with database.transaction() as session:
        row = session.get(schema.ShareGrant, grant)
        assert row is not None
        row.expires_at = schema.utcnow() - timedelta(minutes=1)
        session.add(row)
    with pytest.raises(AccessDenied):
        import_from_pacs(database, doctor, pacs, check, check.listing.preselected, classifier)
    assert read_patient(database, alice, alice.user_id, classifier).scans == ()
