"""Home page: what the app does, what it does not do, and who it is for."""

from __future__ import annotations

import streamlit as st

from core.findings import DISCLAIMER, FINDING_LABELS
from core.words import in_sentence
from pages.ui import current_actor, get_database, show_emergency_reads, viewing
from services import access_log

st.title("Chest X-ray tracker")
actor = current_actor()
viewing()  # a visit here ends the viewing of the page before (its next visit is audited)
if actor is not None:
    show_emergency_reads(actor)
    try:
        notices = access_log.reset_notices(get_database(), actor)
    except access_log.AccessDenied:  # a pending password change: the Account page says so
        notices = []
    for notice in notices:
        st.warning(notice.sentence())
st.write(
    "Keep your chest radiographs in one private place, see them clearly, and follow how a "
    "computer model's reading of them changes over time."
)
st.warning(DISCLAIMER)

left, right = st.columns(2)
with left:
    st.subheader("What the app does")
    st.markdown(
        "\n".join(
            [
                "- Reads chest X-ray files in **PNG, JPEG or DICOM** format.",
                "- Shows each image with adjustable contrast, brightness and sharpness.",
                "- Estimates how likely each of these findings is: "
                + ", ".join(in_sentence(label) for label in FINDING_LABELS.values())
                + ".",
                "- Plots those estimates over time for each of your scans.",
                "- Stores every image and result encrypted, readable only by you and the "
                "clinicians you choose to share with, for as long as you allow.",
            ]
        )
    )
with right:
    st.subheader("What it does not do")
    st.markdown(
        "\n".join(
            [
                "- It does **not** make a diagnosis or replace a doctor, a radiologist's report "
                "or a test.",
                "- It does not look for any condition other than the ones listed.",
                "- It is not meant for emergencies: if you feel unwell, contact a doctor or "
                "emergency services.",
                "- It does not read photographs of screens or printed films reliably; upload the "
                "original file whenever you can.",
            ]
        )
    )

st.subheader("Who it is for")
st.markdown(
    "\n".join(
        [
            "- **Patients**: upload your scans, see the estimates, and share them with a "
            "clinician for a limited time.",
            "- **Clinicians**: review the scans patients shared with you, add notes and discuss "
            "them in a teleconsultation.",
            "- **Analysts**: explore the public training datasets, the model's measured "
            "performance and de-identified counts, never individual records.",
            "- **Administrators**: manage accounts and check the audit trail, without access to "
            "any medical data.",
        ]
    )
)
