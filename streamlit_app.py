"""Entry point: ``streamlit run streamlit_app.py``; routes each role to its pages."""

from __future__ import annotations

import logging

import streamlit as st

from pages.ui import (
    cookie_requests,
    current_actor,
    get_database,
    remember_wanted_page,
    take_session_notice,
    viewing,
)
from services import accounts

st.set_page_config(
    page_title="Chest X-ray tracker", page_icon=":material/pulmonology:", layout="wide"
)

_HOME = st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)
_ACCOUNT = st.Page("pages/account.py", title="Account", icon=":material/person:")
#: Home without being the default page (for the forced password change).
_HOME_PAGE = st.Page("pages/home.py", title="Home", icon=":material/home:")
_CHANGE_PASSWORD = st.Page(
    "pages/account.py", title="Choose a new password", icon=":material/key:", default=True
)
_PAGES_BY_ROLE: dict[str, dict[str, list[st.Page]]] = {
    "patient": {
        "My care": [
            st.Page("pages/upload.py", title="Upload & analyze", icon=":material/upload_file:"),
            st.Page("pages/history.py", title="My scans", icon=":material/folder_open:"),
            st.Page("pages/timeline.py", title="Timeline", icon=":material/timeline:"),
            st.Page("pages/compare.py", title="Compare with prior", icon=":material/compare:"),
            st.Page("pages/report.py", title="Report", icon=":material/description:"),
            st.Page("pages/sharing.py", title="Sharing & access", icon=":material/share:"),
        ]
    },
    "clinician": {
        "Clinic": [
            st.Page("pages/teleconsult.py", title="Teleconsult", icon=":material/stethoscope:"),
            st.Page("pages/sharing.py", title="Shared with me", icon=":material/share:"),
        ]
    },
    "analyst": {
        "Analysis": [
            st.Page("pages/analyst_nih.py", title="NIH ChestX-ray14", icon=":material/bar_chart:"),
            st.Page(
                "pages/analyst_training_data.py", title="Training data", icon=":material/dataset:"
            ),
            st.Page(
                "pages/analyst_performance.py",
                title="Model performance",
                icon=":material/query_stats:",
            ),
            st.Page("pages/analyst_cohort.py", title="Cohort & shift", icon=":material/groups:"),
        ]
    },
    "admin": {
        "Administration": [
            st.Page("pages/admin.py", title="Accounts & audit", icon=":material/shield:")
        ]
    },
}

#: Every page behind the login, by URL path name, with its title.
_APP_PAGES = {
    page.url_path: page.title
    for sections in _PAGES_BY_ROLE.values()
    for pages in sections.values()
    for page in pages
} | {_ACCOUNT.url_path: _ACCOUNT.title}

try:
    # Open storage on first start: creates the schema and the first admin (whose one-time
    # password is printed in the terminal), and fails here, clearly, on a wrong master key.
    get_database()
except Exception:
    logging.getLogger(__name__).exception("storage could not be opened")
    st.error("The app's secure storage could not be opened; please contact the administrator.")
    st.stop()

# The session is checked in the database on every run, before anything is drawn: a logout,
# password change or reset, or disabling elsewhere shows as logged out here, sidebar included.
actor = current_actor()
cookie_requests()
if actor is None:
    wanted = remember_wanted_page()
    notice = take_session_notice()
    if notice:
        st.warning(notice)
    public = [_HOME, st.Page("pages/login.py", title="Log in or register", icon=":material/login:")]
    if wanted in _APP_PAGES:
        # A deep link (or a reload after being logged out): the login form is shown at that
        # address, and the login then continues to the page.
        public.append(
            st.Page(
                "pages/login.py",
                title=f"Log in to open {_APP_PAGES[wanted]}",
                icon=":material/login:",
                url_path=wanted,
            )
        )
    navigation = {"": public}
elif accounts.must_change_password(get_database(), actor):
    # Asked at login: until the password is changed, only the Account page (and Home) is open.
    navigation = {"": [_HOME_PAGE], "You": [_CHANGE_PASSWORD]}
    st.sidebar.caption(f"Logged in as **{actor.username}** ({actor.role})")
else:
    navigation = {"": [_HOME], **_PAGES_BY_ROLE.get(actor.role, {}), "You": [_ACCOUNT]}
    st.sidebar.caption(f"Logged in as **{actor.username}** ({actor.role})")

page = st.navigation(navigation)
# Every run notes the page: a visit to another page ends the viewing whose reads were audited.
viewing()
page.run()
