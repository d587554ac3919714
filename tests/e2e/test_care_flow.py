"""End-to-end: one patient's care flow across the patient, clinician and admin roles.

A patient registers, uploads a PNG and a DICOM from the shared samples, sees the
probabilities and heatmap, stores both, opens the timeline and shares with a
clinician; the clinician (created by the admin) opens a teleconsultation and
adds a note; the patient sees the note and who opened the records; the admin
verifies the audit chain. Each user has a browser context of their own, and
navigation uses the sidebar so that the Streamlit session (the login) is kept.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.browser_steps import (
    Steps,
    choose_files,
    go,
    log_in,
    no_exception,
    pick_view,
    register_patient,
    wait_for_app,
)
from tests.e2e.conftest import ADMIN_PASSWORD, ADMIN_USERNAME

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NIH_PNG = "00000001_000.png"
DICOM = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
PATIENT, PATIENT_PASSWORD = "e2e-patient", "patient-Passw0rd-e2e"
CLINICIAN, CLINICIAN_PASSWORD = "e2e-clinician", "clinician-Passw0rd-e2e"
CLINICIAN_NEW_PASSWORD = "clinician-own-Passw0rd"
NOTE = "Lower zones look clear to me; let us repeat the X-ray in six weeks."


def _register_patient(page, steps: Steps) -> None:
    register_patient(page, PATIENT, PATIENT_PASSWORD)
    steps.shot(page, "patient registered")


def _upload_and_save(
    page, steps: Steps, path: Path, scan_date: str, view: str | None, folder: Path
) -> None:
    """Upload one file, pick its view if it states none, check results and save it.

    The copy is named after the date the X-ray was taken, so the upload table takes the
    date from the file name.
    """
    named = folder / f"{scan_date}_{path.name}"
    shutil.copyfile(path, named)
    go(page, "Upload & analyze")
    choose_files(page, [named])
    if view is not None:
        pick_view(page, 0, view)
    page.get_by_role("heading", name="Where the model looked").wait_for()
    no_exception(page)
    # Charts and images render after their heading arrives; wait rather than count at once.
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    # The view guide's two pictures (when shown), original, enhanced and heatmap overlay.
    page.locator('[data-testid="stImage"]').nth(2).wait_for()
    page.get_by_text("Decision support only").first.wait_for()
    steps.shot(page, f"results {path.suffix.lstrip('.')}")
    page.get_by_role("button", name="Save 1 scan to my record").click()
    wait_for_app(page)
    page.get_by_text("1 of 1 file was saved.").wait_for()
    steps.shot(page, f"saved {path.suffix.lstrip('.')}")
    # Clear the uploader, so that the next file is entered on its own.
    page.locator(
        '[data-testid="stFileChipDeleteBtn"] button, button[data-testid="stFileChipDeleteBtn"]'
    ).first.click()
    wait_for_app(page)


def test_patient_clinician_admin_flow(
    new_page, steps: Steps, samples_dir: Path, tmp_path: Path
) -> None:
    admin = new_page()
    log_in(admin, ADMIN_USERNAME, ADMIN_PASSWORD)
    go(admin, "Accounts & audit")
    admin.get_by_label("Username", exact=True).fill(CLINICIAN)
    admin.get_by_label("Role").click()
    admin.get_by_role("option", name="clinician").click()
    admin.get_by_label("Initial password").fill(CLINICIAN_PASSWORD)
    admin.get_by_role("button", name="Create account").click()
    wait_for_app(admin)
    admin.get_by_text(f"Created clinician account {CLINICIAN}").wait_for()
    steps.shot(admin, "admin created clinician")

    patient = new_page()
    _register_patient(patient, steps)
    _upload_and_save(
        patient, steps, samples_dir / NIH_PNG, "2024-01-15", "Frontal (PA, standing)", tmp_path
    )
    # The DICOM states its view (PA) in its header.
    _upload_and_save(patient, steps, samples_dir / DICOM, "2024-03-01", None, tmp_path)

    go(patient, "Timeline")
    patient.get_by_role("heading", name="Your timeline").wait_for()
    no_exception(patient)
    patient.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    steps.shot(patient, "timeline")

    go(patient, "Sharing & access")
    patient.get_by_label("Clinician's username").fill(CLINICIAN)
    patient.get_by_role("button", name="Share", exact=True).click()
    wait_for_app(patient)
    patient.get_by_text(f"Shared with {CLINICIAN}").wait_for()
    steps.shot(patient, "shared with clinician")

    clinician = new_page()
    log_in(clinician, CLINICIAN, CLINICIAN_PASSWORD)
    # Created by the admin, who knows that password: the clinician replaces it at first login.
    clinician.get_by_role("heading", name="Choose a new password").wait_for()
    clinician.get_by_label("Current password").fill(CLINICIAN_PASSWORD)
    clinician.get_by_label("New password (at least 8 characters)").fill(CLINICIAN_NEW_PASSWORD)
    clinician.get_by_label("Repeat the new password").fill(CLINICIAN_NEW_PASSWORD)
    clinician.get_by_role("button", name="Change password").click()
    wait_for_app(clinician)
    clinician.get_by_text("Your password was changed.").wait_for()
    go(clinician, "Teleconsult")
    clinician.get_by_role("button", name="Start session").click()
    wait_for_app(clinician)
    clinician.get_by_text(f"Session with {PATIENT}").wait_for()
    clinician.get_by_role("tab", name="Notes").click()
    clinician.get_by_label("Note (the patient will see it)").fill(NOTE)
    clinician.get_by_role("button", name="Add note").click()
    wait_for_app(clinician)
    clinician.get_by_text("Note saved in the patient's record.").wait_for()
    no_exception(clinician)
    steps.shot(clinician, "clinician added note")

    go(patient, "My scans")  # shows the newest scan, the one the note is on
    patient.get_by_text(NOTE).wait_for()
    steps.shot(patient, "patient sees note")
    go(patient, "Sharing & access")
    # One sentence per person and day, e.g. "e2e-clinician viewed 2 scans ... on 12 Jan 2026".
    patient.get_by_text(re.compile(rf"^{CLINICIAN} .+ on \d+ \w+ \d{{4}} ")).first.wait_for()
    steps.shot(patient, "who saw my scans")

    go(admin, "Accounts & audit")
    admin.get_by_role("tab", name="Audit trail").click()
    admin.get_by_role("button", name="Verify the audit trail").click()
    wait_for_app(admin)
    admin.get_by_text("The audit trail is intact").wait_for()
    steps.shot(admin, "audit chain verified")
