"""The teleconsult page's "Hospital PACS" tab against a real Orthanc (``TEST_PACS_URL``): shown
only when a PACS is connected and the patient's share allows adding films; search, import
with progress, and the SR of an added DICOM film sent back from the Notes tab."""

from __future__ import annotations

import io
import uuid
from datetime import date

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass

from core.access_summary import summarise_access
from storage import access_log, sharing
from storage.scans import list_scans
from tests.pages._flows import World, page, texts
from tests.services._dicom_films import SERIAL, film
from tests.services.test_pacs import pacs_of, pacs_url_or_skip


@pytest.fixture
def connected(monkeypatch: pytest.MonkeyPatch, world: World, shared_data) -> str:
    """The PACS as the app's settings name it, holding one chest study of a new Patient ID."""
    pacs = pacs_of(pacs_url_or_skip(), "St Mary's PACS")
    monkeypatch.setenv("PACS_URL", pacs.url)
    monkeypatch.setenv("PACS_NAME", pacs.name)
    monkeypatch.setenv("PACS_USERNAME", pacs.username or "")
    monkeypatch.setenv("PACS_PASSWORD", pacs.password or "")
    patient = f"TC-{uuid.uuid4().hex[:8]}"
    series = pydicom.uid.generate_uid()
    serial = shared_data / SERIAL
    films = [
        film(
            serial / name,
            patient_id=patient,
            series_uid=series,
            instance_number=number,
            study_date=date(2025, 3, 14),
        )
        for number, name in enumerate(("p10_day17_38.png", "p10_day19_39.png"), start=1)
    ]
    client = DICOMwebClient(
        pacs.url, session=create_session_from_user_pass(pacs.username, pacs.password)
    )
    client.store_instances([pydicom.dcmread(io.BytesIO(one.data)) for one in films])
    return patient


def _session(world: World):
    at = page("teleconsult.py", world.dr_bob).run()
    at.button(key="start_session").click()
    return at.run()


def test_without_the_patients_consent_there_is_no_pacs_tab(world: World, connected) -> None:
    sharing.grant_access(world.db, world.alice, "dr_bob")
    at = _session(world)
    assert not at.exception
    assert [tab.label for tab in at.tabs] == ["Timeline", "Compare", "Notes"]


def test_a_clinician_adds_the_patients_films_and_sends_a_report(
    world: World, connected: str
) -> None:
    sharing.grant_access(world.db, world.alice, "dr_bob", allow_adding_films=True)
    before = len(list_scans(world.db, world.alice, world.alice.user_id))
    at = _session(world)
    assert not at.exception
    assert [tab.label for tab in at.tabs] == ["Timeline", "Compare", "Notes", "Hospital PACS"]

    at.text_input(key="pacs_patient_id").set_value(connected)
    at.button[[b.label for b in at.button].index("Search")].click()
    at = at.run()
    assert not at.exception, at.exception
    importing = at.button(key="pacs_import")
    assert importing.label == "Add 2 films to alice's record"
    importing.click()
    at = at.run()
    assert not at.exception, at.exception
    assert "2 of 2 files were saved." in texts(at)
    assert len(list_scans(world.db, world.alice, world.alice.user_id)) == before + 2
    log = access_log.access_log(world.db, world.alice, world.alice.user_id)
    sentences = [day.sentence for day in summarise_access(log, None)]
    assert any("dr_bob" in s and "added 2 films from St Mary's PACS" in s for s in sentences)

    # The Notes tab offers the added DICOM film's structured report to the PACS.
    at = _session(world)
    sends = [b for b in at.button if (b.key or "").startswith("pacs_send_")]
    if not sends:  # the Notes tab opens on another film: pick an added one
        added = max(s.id for s in list_scans(world.db, world.alice, world.alice.user_id))
        at.selectbox(key="note_scan").set_value(added)
        at = at.run()
        sends = [b for b in at.button if (b.key or "").startswith("pacs_send_")]
    assert sends and sends[0].label == "Send the structured report to St Mary's PACS"
    sends[0].click()
    at = at.run()
    assert not at.exception, at.exception
    assert "1 report was sent to St Mary's PACS." in texts(at), texts(at)


def test_the_patient_chooses_on_the_sharing_page_whether_films_may_be_added(
    world: World,
) -> None:
    at = page("sharing.py", world.alice).run()
    assert at.checkbox(key="grant_adds_films").value is False  # no consent unless given
    at.text_input(key="grant_clinician").input("dr_bob")
    at.checkbox(key="grant_adds_films").check()
    at.button[0].click()
    at = at.run()
    assert not at.exception
    assert "Shared with dr_bob." in texts(at)
    (grant,) = sharing.list_grants(world.db, world.alice)
    assert grant.allow_adding_films
    assert "dr_bob: all scans, may add films, until" in texts(at)
    (shared,) = sharing.shared_patients(world.db, world.dr_bob)
    assert shared.may_add_films
