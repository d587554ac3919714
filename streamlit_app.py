"""Entry point: ``streamlit run streamlit_app.py``; routes each role to its pages."""

from __future__ import annotations

import logging

import streamlit as st

from pages.ui import current_actor, get_database

st.set_page_config(page_title="Chest X-ray tracker", page_icon="🫁", layout="wide")

_HOME = st.Page("pages/home.py", title="Home", icon="🏠", default=True)
_ACCOUNT = st.Page("pages/account.py", title="Account", icon="👤")
_PAGES_BY_ROLE: dict[str, dict[str, list[st.Page]]] = {
    "patient": {
        "My care": [
            st.Page("pages/upload.py", title="Upload & analyze", icon="📤"),
            st.Page("pages/history.py", title="My scans", icon="🗂️"),
            st.Page("pages/timeline.py", title="Timeline", icon="📈"),
            st.Page("pages/compare.py", title="Compare with prior", icon="🔍"),
            st.Page("pages/report.py", title="Report", icon="📄"),
            st.Page("pages/sharing.py", title="Sharing & access", icon="🤝"),
        ]
    },
    "clinician": {
        "Clinic": [
            st.Page("pages/teleconsult.py", title="Teleconsult", icon="🩺"),
            st.Page("pages/sharing.py", title="Shared with me", icon="🤝"),
        ]
    },
    "analyst": {
        "Analysis": [
            st.Page("pages/analyst_nih.py", title="NIH ChestX-ray14", icon="📊"),
            st.Page("pages/analyst_training_data.py", title="Training data", icon="🗃️"),
            st.Page("pages/analyst_performance.py", title="Model performance", icon="🎯"),
            st.Page("pages/analyst_cohort.py", title="Cohort & shift", icon="👥"),
        ]
    },
    "admin": {"Administration": [st.Page("pages/admin.py", title="Accounts & audit", icon="🛡️")]},
}

try:
    # Open storage on first start: creates the schema and the first admin (whose one-time
    # password is printed in the terminal), and fails here, clearly, on a wrong master key.
    get_database()
except Exception:
    logging.getLogger(__name__).exception("storage could not be opened")
    st.error("The app's secure storage could not be opened; please contact the administrator.")
    st.stop()

actor = current_actor()
if actor is None:
    navigation = {"": [_HOME, st.Page("pages/login.py", title="Log in or register", icon="🔑")]}
else:
    navigation = {"": [_HOME], **_PAGES_BY_ROLE.get(actor.role, {}), "You": [_ACCOUNT]}
    st.sidebar.caption(f"Logged in as **{actor.username}** ({actor.role})")

st.navigation(navigation).run()
