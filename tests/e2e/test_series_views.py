"""End-to-end: a 5-scan series with mixed views, from the upload table to the timeline and Compare.

One real NIH adult (patient 2572, 54-55 years old): four of her real films, three AP and one PA,
wrapped in DICOM files made here with the Study Date, View Position (0018,5101) and Patient's
Age of the NIH labels, so the upload table fills each row's date and view from the header. The
shared data holds no real lateral film, so the side view is the real CR film of the samples
with its View Position rewritten to LL: a real header path, not a real lateral image.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset

from tests.dicom_files import new_dataset
from tests.e2e.browser_steps import (
    Steps,
    choose_files,
    go,
    no_exception,
    register_patient,
    wait_for_app,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PATIENT, PASSWORD = "e2e-views", "views-Passw0rd-e2e"
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
CR_SAMPLE = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
#: (file, NIH film or None for the relabelled CR film, study date, View Position, age).
SERIES = (
    ("ap-jan05.dcm", "No_findings/00002572_000.jpeg", "20260105", "AP", "054Y"),
    ("ap-jan09.dcm", "No_findings/00002572_003.jpeg", "20260109", "AP", "054Y"),
    ("side-jan09.dcm", None, "20260109", "LL", "054Y"),
    ("ap-jan14.dcm", "No_findings/00002572_004.jpeg", "20260114", "AP", "055Y"),
    ("pa-jan20.dcm", "Pneumonia/00002572_006.jpeg", "20260120", "PA", "055Y"),
)


def _nih_dicom(film: Path, study_date: str, view: str, age: str) -> Dataset:
    """A CR DICOM holding a real NIH film's pixels, with the given header facts."""
    pixels = np.asarray(Image.open(film).convert("L"), dtype=np.uint8)
    dataset = new_dataset(CR_IMAGE_STORAGE)
    dataset.Modality = "CR"
    dataset.BodyPartExamined = "CHEST"
    dataset.StudyDate, dataset.ViewPosition, dataset.PatientAge = study_date, view, age
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 8, 8, 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.tobytes()
    dataset["PixelData"].VR = "OB"
    return dataset


def _series_files(shared_data: Path, folder: Path) -> list[Path]:
    paths = []
    for name, film, study_date, view, age in SERIES:
        if film is None:
            dataset = pydicom.dcmread(shared_data / "samples" / CR_SAMPLE)
            dataset.StudyDate, dataset.ViewPosition, dataset.PatientAge = study_date, view, age
        else:
            dataset = _nih_dicom(shared_data / "nih_adult" / "test" / film, study_date, view, age)
        path = folder / name
        dataset.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _picked(selectbox) -> str:
    """What a select box shows: its label and chosen option (text or its input's value)."""
    shown = [selectbox.inner_text()]
    field = selectbox.locator("input")
    if field.count():
        shown.append(field.first.input_value())
    return " ".join(shown)


def _trace_names(page) -> set[str]:
    """The legend names of the first chart's traces, read from its plotly spec."""
    chart = page.locator('[data-testid="stPlotlyChart"]').first
    chart.wait_for()
    spec = page.evaluate(
        "el => JSON.stringify(el.querySelector('.js-plotly-plot').data.map(t => t.name))",
        chart.element_handle(),
    )
    return set(json.loads(spec))


def test_a_mixed_view_series_is_compared_like_with_like(
    new_page, steps: Steps, shared_data: Path, tmp_path: Path
) -> None:
    files = _series_files(shared_data, tmp_path)
    page = new_page()
    register_patient(page, PATIENT, PASSWORD)

    go(page, "Upload & analyze")
    choose_files(page, files)
    no_exception(page)
    save = page.get_by_role("button", name="Save 5 scans to my record")
    save.wait_for()
    # Dates and views came from the headers: nothing to fill in, except one choice: the view
    # check doubts the AP film of 14 January (a real AP film, lying low in its frame), so Save
    # waits until the patient confirms its view.
    assert save.is_disabled()
    steps.shot(page, "series table filled from the headers, one view to confirm")
    page.get_by_text("ap-jan14.dcm is a frontal film").click()
    wait_for_app(page)
    assert save.is_enabled()
    save.click()
    wait_for_app(page)
    page.get_by_text("5 of 5 files were saved").wait_for()
    no_exception(page)
    steps.shot(page, "series saved")

    go(page, "Timeline")
    page.get_by_role("heading", name="Your timeline").wait_for()
    no_exception(page)
    names = _trace_names(page)
    assert {"Pneumonia (AP)", "Pneumonia (PA)"} <= names
    assert not any("lateral" in name for name in names)
    page.get_by_text("1 side (lateral) view. Side (lateral) views are kept").wait_for()
    body = page.locator('[data-testid="stMain"]').inner_text()
    # A rise is only ever measured against an earlier day's film of the same projection.
    rises = [line for line in body.splitlines() if " rose from " in line]
    assert all("since the AP film of" in line or "since the PA film of" in line for line in rises)
    steps.shot(page, "timeline one line per projection")

    go(page, "Compare")
    no_exception(page)
    # The latest two comparable films of one projection: the AP films of 5 and 9 January (the
    # one of 14 January, of an uncertain view, is never a default).
    pickers = page.locator('[data-testid="stSelectbox"]')
    assert "5 Jan 2026, frontal (AP)" in _picked(pickers.nth(0))
    assert "9 Jan 2026, frontal (AP)" in _picked(pickers.nth(1))
    assert page.get_by_text("different projections").count() == 0
    steps.shot(page, "compare opens on two AP films")
    pickers.nth(1).click()
    page.get_by_role("option", name="20 Jan 2026").first.click()
    wait_for_app(page)
    page.get_by_text("These films are of different projections").wait_for()
    no_exception(page)
    steps.shot(page, "compare warns on AP against PA")
