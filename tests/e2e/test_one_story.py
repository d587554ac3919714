"""End-to-end: one story per film, as a new patient with real serial adult films sees it.

A patient (born 1980) chooses a real PA film, a real lateral film of the serial adults
(``external/serial_adults``, patient 13) given as PA, and a colour photograph. The photograph
is refused before a date or view is asked; the lateral given as PA must be confirmed before
Save; afterwards My scans, Timeline and Report tell the same story of each film: the lateral
kept as PA reads "view uncertain", and the Report opens on the latest film with numbers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fhir.resources.R4B.bundle import Bundle
from PIL import Image

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

PATIENT, PASSWORD = "e2e-one-story", "one-story-Passw0rd"


def _files(shared_data: Path, folder: Path) -> list[Path]:
    front = folder / "2026-01-05_front.png"
    shutil.copyfile(shared_data / "samples" / "00000001_000.png", front)
    side = folder / "2026-01-08_chest.png"
    shutil.copyfile(shared_data / "external" / "serial_adults" / "p13_day04_5.png", side)
    photo = folder / "2026-01-12_photo.jpg"
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)
    Image.fromarray(colours).save(photo, quality=90)
    return [front, side, photo]


def test_each_film_tells_one_story_from_upload_to_report(
    new_page, steps: Steps, shared_data: Path, tmp_path: Path
) -> None:
    page = new_page()
    register_patient(page, PATIENT, PASSWORD, birth_year=1980)
    go(page, "Upload & analyze")
    choose_files(page, _files(shared_data, tmp_path))
    no_exception(page)
    # The photograph is refused at once, with its sentence, and asks for nothing.
    page.get_by_text(
        "This is not a chest X-ray: it looks like a colour photograph."
    ).first.wait_for()
    pick_view(page, 0, "Frontal (PA, standing)")
    pick_view(page, 1, "Frontal (PA, standing)")
    # The real lateral given as PA: Save waits for an explicit choice.
    page.get_by_role("heading", name="Confirm these views").wait_for()
    save = page.get_by_role("button", name="Save 2 scans to my record")
    assert save.is_disabled()
    steps.shot(page, "a lateral given as PA needs confirming; the photo is refused")
    page.get_by_text("2026-01-08_chest.png is a frontal film").click()
    wait_for_app(page)
    assert save.is_enabled()
    save.click()
    wait_for_app(page)
    page.get_by_text("2 of 2 files were saved.").wait_for()
    no_exception(page)
    steps.shot(page, "saved with each film's headline")

    go(page, "My scans")
    no_exception(page)
    main = page.locator('[data-testid="stMain"]')
    page.get_by_text("Scored, view uncertain").first.wait_for()
    assert "strongest" not in main.inner_text()
    steps.shot(page, "my scans: the same status and headline")
    # The same readings leave for a record system as FHIR R4.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download FHIR bundle (JSON)").click()
    bundle = Bundle.model_validate_json(Path(download.value.path()).read_text())
    conclusions = [
        entry.resource.conclusion
        for entry in bundle.entry
        if entry.resource.get_resource_type() == "DiagnosticReport"
    ]
    assert len(conclusions) == 2 and any(c.startswith("View uncertain.") for c in conclusions)

    go(page, "Timeline")
    no_exception(page)
    page.get_by_text("Scored, view uncertain").first.wait_for()
    steps.shot(page, "timeline table and chart")

    go(page, "Report")
    no_exception(page)
    page.get_by_role("heading", name="Summary").wait_for()
    picker = page.locator('[data-testid="stSelectbox"]').first
    picked = picker.inner_text() + " " + picker.locator("input").first.input_value()
    # The latest film with numbers is the uncertain one of 8 Jan; the report opens on it.
    assert "8 Jan 2026" in picked
    assert page.get_by_text("Coloured areas").count() == 0, "no heatmap, no heatmap caption"
    steps.shot(page, "report opens on the latest film with numbers")
