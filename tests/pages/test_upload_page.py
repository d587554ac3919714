"""Home and Upload & analyze pages.

Run headless through Streamlit's AppTest with a real database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.findings import DISCLAIMER
from core.imaging import UnsupportedFormat
from models import inference
from storage.scans import list_scans
from tests.pages._flows import (
    PROJECT_ROOT,
    REAL_DICOM,
    TIMEOUT_S,
    edit_upload_table,
    page,
    scan_uploader,
    texts,
    upload,
    upload_statuses,
)


def test_home_page_states_scope_and_disclaimer() -> None:
    at = AppTest.from_file(str(PROJECT_ROOT / "pages" / "home.py"), default_timeout=TIMEOUT_S).run()
    assert not at.exception
    text = texts(at)
    assert DISCLAIMER in text
    assert "not** make a diagnosis" in text
    for role in ("Patients", "Clinicians", "Analysts", "Administrators"):
        assert role in text


def test_upload_page_requires_a_patient(world) -> None:
    at = page("upload.py", world.dr_bob).run()
    assert [e.value for e in at.error] == ["This page is not available for your account."]
    assert not at.file_uploader


def test_upload_page_without_a_file_invites_an_upload(world) -> None:
    at = page("upload.py", world.alice).run()
    assert not at.exception
    assert scan_uploader(at).allowed_type == []  # type is read from content, any name accepted
    assert "Choose one or more PNG, JPEG or DICOM files" in texts(at)


def test_dicom_upload_without_model_shows_image_and_says_so(world, samples_dir: Path) -> None:
    at = upload(
        page("upload.py", world.alice).run(), ("scan", (samples_dir / REAL_DICOM).read_bytes())
    )
    assert not at.exception
    assert "CR" in at.table[0].value.to_string()
    # The sample's Study Date is a placeholder: the result waits for the patient's date.
    assert "Enter this file's date and view in the table to see its result." in texts(at)
    at = edit_upload_table(at, {0: {"date": "2026-05-01"}})
    assert not at.exception
    # The view guide's two pictures, then the file before and after enhancement.
    assert len(at.get("image")) == 4
    assert any("The analysis model is not available" in e.value for e in at.error)
    # Without a model the file can still be saved (without a result).
    assert not at.button(key="upload_save").disabled


def test_dicom_upload_shows_probabilities_heatmap_and_saves(
    world, shipped_model, samples_dir: Path
) -> None:
    at = upload(
        page("upload.py", world.alice).run(), ("scan.dcm", (samples_dir / REAL_DICOM).read_bytes())
    )
    assert not at.exception and not at.error
    # The sample's anonymised Study Date (1901) is named as such and not pre-filled: the
    # patient enters it, and Save and the result wait for it.
    (editor,) = at.data_editor
    assert editor.value["status"][0] == "Needs your input"
    assert "looks like a placeholder" in upload_statuses(at)[0]
    assert at.button(key="upload_save").disabled
    assert not at.get("plotly_chart")
    at = edit_upload_table(at, {0: {"date": "2026-05-01"}})
    assert not at.exception and not at.error
    assert DISCLAIMER in texts(at)
    # The file states Patient's Age 062Y: it is read as an adult's film.
    assert "Each number was learned from different patients" in texts(at)
    assert len(at.get("plotly_chart")) == 1, "probability bars"
    assert len(at.get("image")) == 5, "guide (2), before, after and heatmap overlay"
    at.slider(key="heatmap_opacity").set_value(0.9)
    at = at.run()
    assert not at.exception
    at = at.button(key="upload_save").click().run()
    assert not at.exception and not at.error
    (summary,) = list_scans(world.db, world.alice, world.alice.user_id)[-1:]
    assert summary.scan_date.isoformat() == "2026-05-01"
    assert summary.results and summary.results[-1].model_version
    assert summary.results[-1].population == "adult"


def test_two_reruns_load_the_model_once(world, shipped_model, samples_dir: Path) -> None:
    before = inference.load_count()
    at = upload(
        page("upload.py", world.alice).run(),
        ("a.png", (samples_dir / "00000001_000.png").read_bytes()),
    )
    at = edit_upload_table(at, {0: {"date": "2026-01-05", "view": "Frontal (PA, standing)"}})
    (gamma,) = [s for s in at.slider if s.key and s.key.endswith("_gamma")]
    gamma.set_value(0.5)
    at = at.run()
    assert not at.exception
    assert inference.load_count() - before == 1


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.png", b"just some text", UnsupportedFormat.default_message),
        ("empty.dcm", b"", "This file is empty."),
    ],
)
def test_bad_upload_shows_one_sentence_and_keeps_nothing(
    world, name: str, data: bytes, message: str
) -> None:
    before = len(list_scans(world.db, world.alice, world.alice.user_id))
    at = upload(page("upload.py", world.alice).run(), (name, data))
    assert not at.exception
    assert [error.value for error in at.error] == [f"{name} cannot be used: {message}"]
    assert not at.get("image")
    assert at.button(key="upload_save").disabled
    assert len(list_scans(world.db, world.alice, world.alice.user_id)) == before
