"""End-to-end: a patient enters a 5-scan series with mixed views in one table, saves it once.

A new patient (born 1961) chooses five real films at once: two NIH PNGs, the sample DICOM and
two adult NIH JPEGs, named with the date each was taken. The table takes every date from the
file names and the DICOM's view from its header; the patient picks the other views in the
table (PA, side, AP, AP lying down), guided by the pictures above it. Save stays disabled
until every row has a date and a view, stores five scans, and offers nothing more to save
when the same files are chosen again. The side view is kept but not scored.

No lateral radiograph exists in ../shared/data: the "side" film here is a real frontal NIH
film that the patient marks as lateral (the app's view check then says it looks frontal).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.browser_steps import (
    Steps,
    choose_files,
    go,
    no_exception,
    pick_view,
    register_patient,
    wait_for_app,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
PATIENT, PASSWORD = "e2e-series", "series-Passw0rd-e2e"
#: (copy's name, source under ../shared/data, view to pick in the table or None: from DICOM).
SERIES = (
    ("2026-01-05_front.png", "samples/00000001_000.png", "Frontal (PA, standing)"),
    ("2026-01-05_side.png", "samples/00027426_000.png", "Side (lateral)"),
    ("2026-01-07.dcm", f"samples/{DICOM}", None),
    ("2026-01-09_bedside.jpeg", "nih_adult/test/Pneumonia/00000415_001.jpeg", "Frontal (AP)"),
    (
        "2026-01-11_in_bed.jpeg",
        "nih_adult/test/Pneumonia/00000798_025.jpeg",
        "Frontal (AP, lying down)",
    ),
)


def test_a_series_with_mixed_views_is_entered_in_one_table_and_saved_once(
    new_page, steps: Steps, shared_data: Path, tmp_path: Path
) -> None:
    files = []
    for name, source, _ in SERIES:
        files.append(tmp_path / name)
        shutil.copyfile(shared_data / source, files[-1])

    patient = new_page()
    register_patient(patient, PATIENT, PASSWORD, birth_year=1961)
    go(patient, "Upload & analyze")
    choose_files(patient, files)
    no_exception(patient)
    save = patient.get_by_role("button", name="Save 5 scans to my record")
    assert save.is_disabled(), "four films still need their view"
    patient.get_by_text("4 files still need a date or a view").wait_for()
    # The closer look shows the first file, which has no view yet.
    waiting = patient.get_by_text("Enter this file's date and view in the table to see its result.")
    waiting.wait_for()
    steps.shot(patient, "series table before views")

    for row, (_, _, view) in enumerate(SERIES):
        if view is not None:
            pick_view(patient, row, view)
    no_exception(patient)
    # The table and the closer look rerun apart; the first file's view, entered in the table,
    # still reached the closer look: its result is shown.
    patient.get_by_role("heading", name="Where the model looked").wait_for()
    assert waiting.count() == 0
    save.wait_for()
    assert save.is_enabled()
    steps.shot(patient, "series table ready")

    save.click()
    wait_for_app(patient)
    patient.get_by_text("5 of 5 files were saved.").wait_for()
    patient.get_by_text("There is nothing new to save").wait_for()
    steps.shot(patient, "series saved")

    # The same files again: every row is recognised, nothing can be saved twice.
    go(patient, "My scans")
    go(patient, "Upload & analyze")
    choose_files(patient, files)
    patient.get_by_text("There is nothing new to save").wait_for()
    assert patient.get_by_role("button", name="Save", exact=True).is_disabled()

    go(patient, "My scans")
    no_exception(patient)
    patient.get_by_role("heading", name="11 Jan 2026, frontal (AP, lying down)").wait_for()
    steps.shot(patient, "my scans")

    go(patient, "Timeline")
    patient.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    no_exception(patient)
    steps.shot(patient, "timeline of the series")
