"""Pending emergency access requests, for the clinicians and admins who may approve them."""

from __future__ import annotations

import streamlit as st

from pages.ui import show_error
from services import sharing
from services.handles import Actor, Database


def approvals(db: Database, actor: Actor) -> None:
    """List pending emergency requests with an Approve button for each one of someone else's.

    Args:
        db: Database handle.
        actor: A clinician or an admin.
    """
    st.subheader("Emergency requests waiting for a second person")
    st.caption(
        "A clinician's emergency request opens a patient's records only after someone else "
        "approves it in time. Approve only a request you have confirmed with the clinician; "
        "the patient sees your name."
    )
    try:
        pending = sharing.pending_emergency_requests(db, actor)
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    if not pending:
        st.caption("No request is waiting.")
    for request in pending:
        st.write(
            f"{request.clinician_username} asks to open {request.patient_username}'s records "
            f"for {request.minutes} minutes (asked {request.created_at:%H:%M} UTC; approve "
            f"before {request.approve_before:%H:%M} UTC). Reason:"
        )
        if request.reason is None:  # an administrator: who, when, and that a reason was given
            st.caption(
                "A reason was given; only clinicians and the patient read it. Confirm it with "
                "the clinician before you approve."
            )
        else:
            st.text(f"\u201c{request.reason}\u201d")  # plain text: the clinician's own words
        if request.own:
            st.caption("Your own request: another clinician or an administrator must approve it.")
        elif st.button("Approve", key=f"approve_emergency_{request.id}"):
            try:
                sharing.approve_emergency_access(db, actor, request.id)
            except Exception as err:  # shown as one sentence
                show_error(err)
            else:
                st.success(f"Approved: {request.clinician_username} can open the records now.")
