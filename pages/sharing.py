"""Sharing and access: patients grant and revoke clinician access and see who looked;
clinicians see who shared with them and may declare emergency access."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from core.access_summary import summarise_access
from core.localtime import format_local
from core.words import plural
from pages.emergency import approvals
from pages.ui import browser_zone, get_database, require_actor, show_error, viewing
from services import access_log, emergency, sharing


def _clock(moment: datetime) -> str:
    return format_local(moment, browser_zone(), with_date=False)


def _emergency_state(item: sharing.EmergencyInfo) -> str:
    if item.approved_at is None:
        if item.state == "waiting for approval":
            return f"waiting for a second person's approval until {_clock(item.expires_at)}"
        return "nobody approved it in time, so it opened nothing"
    return (
        f"approved by {item.approver_username} at {_clock(item.approved_at)}, "
        f"{'open' if item.state == 'open' else 'ended'} until {_clock(item.expires_at)}"
    )


def _patient_view(db, actor) -> None:
    for notice in access_log.reset_notices(db, actor):
        st.warning(notice.sentence())
    refuses = emergency.refuses_emergency_access(db, actor)
    wanted = st.toggle(
        "Refuse emergency access to my records",
        value=refuses,
        key="refuse_emergency",
        help="When on, no clinician can open your records without a share from you, even in "
        "an emergency with a second person's approval.",
    )
    if wanted != refuses:
        emergency.refuse_emergency_access(db, actor, wanted)
    emergencies = sharing.list_emergency_accesses(db, actor)
    for item in emergencies:
        st.error(
            f"EMERGENCY ACCESS: {item.clinician_username} asked on "
            f"{format_local(item.created_at, browser_zone())} to open your records without your "
            f"permission ({_emergency_state(item)}), stating:"
        )
        st.text(f"\u201c{item.reason}\u201d")  # plain text: the reason is the clinician's words

    st.subheader("Share with a clinician")
    names = sharing.scan_names(db, actor, viewing=viewing())
    with st.form("grant_form", clear_on_submit=True):
        clinician = st.text_input("Clinician's username", key="grant_clinician")
        everything = st.checkbox("All my scans, including future ones", value=True, key="grant_all")
        chosen = st.multiselect(
            "Or only these scans",
            list(names),
            format_func=names.__getitem__,
            key="grant_scans",
        )
        hours = st.number_input(
            "For how many hours", 1, sharing.MAX_GRANT_HOURS, 24, key="grant_hours"
        )
        adds_films = st.checkbox(
            "Let them add films from the hospital's PACS to my record",
            value=False,
            key="grant_adds_films",
            help="While the share lasts, this clinician may import your X-rays from the "
            "hospital's image archive into your record. They count to your storage, you see "
            "each one, and you can delete them.",
        )
        submitted = st.form_submit_button("Share")
    if submitted:
        try:
            scan_ids = None if everything else list(chosen)
            sharing.grant_access(
                db,
                actor,
                clinician,
                scan_ids=scan_ids,
                hours=int(hours),
                allow_adding_films=bool(adds_films),
            )
        except Exception as err:  # shown as one sentence
            show_error(err)
        else:
            st.success(f"Shared with {clinician.strip().lower()}.")

    st.subheader("Your shares")
    grants = sharing.list_grants(db, actor)
    if not grants:
        st.caption("You have not shared anything.")
    for grant in grants:
        scope = "all scans" if grant.scan_ids is None else plural(len(grant.scan_ids), "scan")
        if grant.allow_adding_films:
            scope += ", may add films"
        state = "active" if grant.active else "ended"
        cols = st.columns([4, 1])
        cols[0].write(
            f"{grant.clinician_username}: {scope}, until "
            f"{format_local(grant.expires_at, browser_zone())} ({state})"
        )
        if grant.active and cols[1].button("Revoke", key=f"revoke_{grant.id}"):
            sharing.revoke_access(db, actor, grant.id)
            st.rerun()

    st.subheader("Who accessed your records")
    log = access_log.access_log(db, actor, actor.user_id)
    if not log:
        st.caption("Nobody else has opened your records.")
    else:
        st.caption(
            "Your own actions appear here only in the first session after an administrator "
            "reset your password, marked \u201cafter a password reset\u201d: that may not have "
            "been you."
        )
        zone = browser_zone()
        for day in summarise_access(log, zone):
            (st.error if day.emergency else st.write)(day.sentence)
        with st.expander(f"Every entry ({plural(len(log), 'entry', 'entries')})"):
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "time": format_local(datetime.fromisoformat(e.ts), zone),
                            "who": e.actor_username,
                            "what": e.action.replace("_", " "),
                            "emergency": "EMERGENCY" if e.emergency else "",
                            "note": "after a password reset" if e.after_reset else "",
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
        st.write(
            f"{patient.username}: until {format_local(patient.expires_at, browser_zone())}{flag}"
        )

    st.subheader("Emergency access")
    approval_minutes = db.settings.emergency_approval_minutes
    st.warning(
        "Use only when the patient cannot consent. Another clinician or an administrator must "
        f"approve your request within {approval_minutes} minutes before it opens anything. "
        "The patient is told, with your reason and the approver's name, and every access is "
        "flagged in the audit trail."
    )
    with st.form("emergency_form", clear_on_submit=True):
        patient_name = st.text_input("Patient's username", key="emergency_patient")
        reason = st.text_area("Reason (at least 10 characters)", key="emergency_reason")
        minutes = st.number_input("Minutes", 5, 240, 60, step=5, key="emergency_minutes")
        declared = st.form_submit_button("Request emergency access")
    if declared:
        try:
            sharing.request_emergency_access(db, actor, patient_name, reason, minutes=int(minutes))
        except Exception as err:  # shown as one sentence
            show_error(err)
        else:
            st.success(
                "Emergency access requested. Ask a colleague or an administrator to approve it "
                f"within {approval_minutes} minutes; then open the patient from the teleconsult "
                "page."
            )
    approvals(db, actor)


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
