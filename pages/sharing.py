"""Sharing and access: patients grant and revoke clinician access and see who looked;
clinicians see who shared with them and may declare emergency access."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.labels import scan_label
from pages.ui import get_database, require_actor, show_error
from storage import audit, sharing
from storage.scans import list_scans


def _patient_view(db, actor) -> None:
    emergencies = sharing.list_emergency_accesses(db, actor)
    for item in emergencies:
        st.error(
            f"EMERGENCY ACCESS: {item.clinician_username} opened your records on "
            f"{item.created_at:%Y-%m-%d %H:%M} UTC without your permission, until "
            f"{item.expires_at:%H:%M} UTC, stating:"
        )
        st.text(f"\u201c{item.reason}\u201d")  # plain text: the reason is the clinician's words

    st.subheader("Share with a clinician")
    by_id = {scan.id: scan for scan in list_scans(db, actor, actor.user_id)}
    with st.form("grant_form", clear_on_submit=True):
        clinician = st.text_input("Clinician's username", key="grant_clinician")
        everything = st.checkbox("All my scans, including future ones", value=True, key="grant_all")
        chosen = st.multiselect(
            "Or only these scans",
            list(by_id),
            format_func=lambda i: scan_label(by_id[i]),
            key="grant_scans",
        )
        hours = st.number_input(
            "For how many hours", 1, sharing.MAX_GRANT_HOURS, 24, key="grant_hours"
        )
        submitted = st.form_submit_button("Share")
    if submitted:
        try:
            scan_ids = None if everything else list(chosen)
            sharing.grant_access(db, actor, clinician, scan_ids=scan_ids, hours=int(hours))
        except Exception as err:  # shown as one sentence
            show_error(err)
        else:
            st.success(f"Shared with {clinician.strip().lower()}.")

    st.subheader("Your shares")
    grants = sharing.list_grants(db, actor)
    if not grants:
        st.caption("You have not shared anything.")
    for grant in grants:
        scope = "all scans" if grant.scan_ids is None else f"{len(grant.scan_ids)} scan(s)"
        state = "active" if grant.active else "ended"
        cols = st.columns([4, 1])
        cols[0].write(
            f"{grant.clinician_username}: {scope}, until "
            f"{grant.expires_at:%Y-%m-%d %H:%M} UTC ({state})"
        )
        if grant.active and cols[1].button("Revoke", key=f"revoke_{grant.id}"):
            sharing.revoke_access(db, actor, grant.id)
            st.rerun()

    st.subheader("Who accessed your records")
    log = audit.access_log(db, actor, actor.user_id)
    if not log:
        st.caption("Nobody else has opened your records.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "time (UTC)": e.ts[:19].replace("T", " "),
                        "who": e.actor_username,
                        "what": e.action.replace("_", " "),
                        "emergency": "EMERGENCY" if e.emergency else "",
                    }
                    for e in log
                ]
            ),
            hide_index=True,
        )


def _clinician_view(db, actor) -> None:
    st.subheader("Patients who shared with you")
    patients = sharing.shared_patients(db, actor)
    if not patients:
        st.caption("No patient currently shares records with you.")
    for patient in patients:
        flag = " (EMERGENCY ACCESS)" if patient.emergency else ""
        st.write(f"{patient.username}: until {patient.expires_at:%Y-%m-%d %H:%M} UTC{flag}")

    st.subheader("Emergency access")
    st.warning(
        "Use only when the patient cannot consent. The patient is told, with your reason, "
        "and every access is flagged in the audit trail."
    )
    with st.form("emergency_form", clear_on_submit=True):
        patient_name = st.text_input("Patient's username", key="emergency_patient")
        reason = st.text_area("Reason (at least 10 characters)", key="emergency_reason")
        minutes = st.number_input("Minutes", 5, 240, 60, step=5, key="emergency_minutes")
        declared = st.form_submit_button("Open records in an emergency")
    if declared:
        try:
            sharing.emergency_access(db, actor, patient_name, reason, minutes=int(minutes))
        except Exception as err:  # shown as one sentence
            show_error(err)
        else:
            st.success("Emergency access granted; open the patient from the teleconsult page.")


actor = require_actor("patient", "clinician")
db = get_database()
st.title("Sharing and access")
try:
    if actor.role == "patient":
        _patient_view(db, actor)
    else:
        _clinician_view(db, actor)
except Exception as err:  # shown as one sentence
    show_error(err)
