"""End-to-end: a clinician draws a box on a scan, the patient sees it, and the report's PDF.

The record is seeded through the storage layer (two PA films from the shared samples with
stored results, a display name, a share with the clinician), so the test exercises only what
it is about: dragging a box on the teleconsult chart stores it in image pixels, the patient
gets a "new note" badge and sees the mark on My scans, and the report downloads as a PDF whose
pages, text and layout are checked (patient's name, scan date and view, local time, the
timeline, the disclaimer once, no heading at the foot of a page).
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from core.findings import DISCLAIMER
from core.imaging import decode_scan
from core.report_pdf import HEADINGS
from core.settings import load_settings
from core.views import View
from services.imports import save_decoded_scan
from storage import accounts, sharing
from storage.bootstrap import open_database
from storage.crypto import encode_master_key, new_master_key
from storage.notes import list_notes
from storage.profile import set_display_name
from storage.scans import list_scans
from tests.core._pdf import IMAGE_LINE, page_count, page_lines
from tests.e2e.browser_steps import RUN_TIMEOUT_MS, Steps, go, log_in, settle
from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, AppServer, serve
from tests.pages._flows import shipped_result

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PATIENT, PATIENT_PASSWORD = "e2e-ana", "ana-Passw0rd-e2e"
CLINICIAN, CLINICIAN_PASSWORD = "e2e-lee", "lee-Passw0rd-e2e"
FILMS = ((date(2025, 11, 3), "00000001_000.png", 0.2), (date(2026, 1, 12), "00027426_000.png", 0.7))
NOTE = "Hazy area at the right base; repeat the film in six weeks."
ZONE = "Europe/Madrid"
#: The dragged box, as fractions of the chart's plotting area (left, top, right, bottom).
DRAG = (0.3, 0.55, 0.5, 0.75)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, artifacts: Path, samples_dir: Path):
    """A server over a record with two PA films shared with the clinician."""
    data_dir = tmp_path_factory.mktemp("e2e-marks")
    env = {
        "DATA_DIR": str(data_dir),
        "MASTER_KEY": encode_master_key(new_master_key()),
        "ADMIN_USERNAME": ADMIN_USERNAME,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    db = open_database(load_settings(env))
    patient = accounts.register(db, PATIENT, PATIENT_PASSWORD)
    accounts.operator_create_user(db, CLINICIAN, CLINICIAN_PASSWORD, "clinician")
    set_display_name(db, patient, "Ana Ruiz")
    for day, name, pneumonia in FILMS:
        scan = decode_scan((samples_dir / name).read_bytes(), name)
        # The shipped model's own result: an older model's would await re-scoring.
        result = shipped_result(pneumonia=pneumonia)
        save_decoded_scan(
            db, patient, scan, scan_date=day, filename=name, view=View.PA, result=result
        )
    sharing.grant_access(db, patient, CLINICIAN, hours=4)
    db.close()
    with serve(data_dir, artifacts / "server-marks.log", **env) as server:
        yield server, env


def _browser_page(browser, server: AppServer) -> object:
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, base_url=server.url, timezone_id=ZONE
    )
    context.set_default_timeout(RUN_TIMEOUT_MS)
    return context.new_page()


def _drag_box(page) -> None:
    chart = page.locator('[data-testid="stPlotlyChart"]').last
    chart.scroll_into_view_if_needed()
    area = chart.locator(".nsewdrag").first.bounding_box()
    left, top, right, bottom = DRAG
    start = (area["x"] + area["width"] * left, area["y"] + area["height"] * top)
    end = (area["x"] + area["width"] * right, area["y"] + area["height"] * bottom)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=5)
    page.mouse.move(*end, steps=5)
    page.mouse.up()
    settle(page)


def test_a_box_drawn_by_the_clinician_is_stored_in_image_pixels_and_shown_to_the_patient(
    seeded, browser, steps: Steps
) -> None:
    server, env = seeded
    clinician = _browser_page(browser, server)
    log_in(clinician, CLINICIAN, CLINICIAN_PASSWORD)
    go(clinician, "Teleconsult")
    clinician.get_by_role("button", name="Start session").click()
    settle(clinician)
    clinician.get_by_role("tab", name="Notes").click()
    clinician.get_by_text("Box (drag on the image)").click()
    settle(clinician)
    _drag_box(clinician)
    clinician.get_by_text(re.compile(r"New mark: box from")).wait_for()
    steps.shot(clinician, "clinician drew a box")
    clinician.get_by_label("Note (the patient will see it)").fill(NOTE)
    clinician.get_by_role("button", name="Add note").click()
    settle(clinician)
    clinician.get_by_text("Note saved in the patient's record.").wait_for()
    clinician.get_by_text(re.compile(r"\(Mark 1\):")).wait_for()
    steps.shot(clinician, "note with its mark saved")
    # The box is emptied for the next note: the saved text is not left to be sent again.
    assert clinician.get_by_label("Note (the patient will see it)").input_value() == ""
    clinician.get_by_text("No mark yet: the note will be saved without one.").wait_for()

    # Stored in the image's pixels: the box covers the dragged part of the film.
    db = open_database(load_settings(env))
    try:
        patient = accounts.find_actor(db, PATIENT)
        latest = max(list_scans(db, patient, patient.user_id), key=lambda s: s.scan_date)
        (note,) = list_notes(db, accounts.find_actor(db, CLINICIAN), latest.id)
        height, width = _image_size(db, patient, latest.id)
    finally:
        db.close()
    box = note.annotation
    assert box is not None and set(box) == {"x0", "y0", "x1", "y1"}
    assert 0 <= box["x0"] < box["x1"] <= width and 0 <= box["y0"] < box["y1"] <= height
    # The chart shows the whole image in the middle of its area: the box spans a fifth to a
    # third of the film's width, on its lower half.
    assert 0.1 * width < box["x1"] - box["x0"] < 0.5 * width
    assert box["y0"] > 0.4 * height

    page = _browser_page(browser, server)
    log_in(page, PATIENT, PATIENT_PASSWORD)
    go(page, "My scans")
    page.get_by_text("1 new note from your clinicians").wait_for()
    page.get_by_text(NOTE).wait_for()
    page.get_by_text("(Mark 1 on the image)").wait_for()
    page.get_by_text("Green marks: the clinicians' notes below.").wait_for()
    steps.shot(page, "patient sees the badge, the box and the note")
    page.get_by_role("button", name="Mark these notes as read").click()
    settle(page)
    page.get_by_text(NOTE).wait_for()
    assert page.get_by_text("1 new note from your clinicians").count() == 0
    steps.shot(page, "notes read: no badge")


def _image_size(db, actor, scan_id: int) -> tuple[int, int]:
    from storage.scans import load_scan

    return load_scan(db, actor, scan_id).pixels.shape


def test_the_report_pdf_names_the_patient_and_scan_and_keeps_headings_with_their_text(
    seeded, browser, steps: Steps, tmp_path: Path
) -> None:
    server, _ = seeded
    page = _browser_page(browser, server)
    log_in(page, PATIENT, PATIENT_PASSWORD)
    go(page, "Report")
    page.get_by_role("heading", name="Summary").wait_for()
    assert page.get_by_text(DISCLAIMER).count() == 1, "the disclaimer once on the page"
    steps.shot(page, "report page")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download PDF").click()
    path = tmp_path / "report.pdf"
    download.value.save_as(path)
    pdf = path.read_bytes()

    pages = page_lines(pdf)
    # Two films, a timeline, the explanation and its limits: three pages at most.
    assert page_count(pdf) == len(pages) <= 3
    text = "\n".join(line for lines in pages for line in lines)
    assert "Patient Ana Ruiz" in text
    assert "Scan 12 Jan 2026, frontal (PA, standing)" in text
    assert re.search(r"Report made \d+ \w{3} \d{4} \d\d:\d\d CES?T", text)
    assert "UTC" not in text and ".png" not in text
    assert "Your scores over time" in text and "3 Nov 2025" in text
    assert IMAGE_LINE in text
    assert " ".join(text.split()).count(DISCLAIMER[:40]) == 1
    for number, lines in enumerate(pages, start=1):
        body = [line for line in lines if " - page " not in line]
        assert body[-1] not in HEADINGS, f"page {number} ends with its heading {body[-1]!r}"
    assert pages[-1][-1].endswith(f"page {len(pages)} of {len(pages)}")
