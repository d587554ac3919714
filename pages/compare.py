"""Compare page: two of the patient's scans side by side, with the change of each finding."""

from __future__ import annotations

import streamlit as st

from pages.ui import current_classifier, get_database, require_actor, show_disclaimer, show_error
from pages.widgets import render_compare
from storage.scans import list_scans

actor = require_actor("patient")
db = get_database()
st.title("Compare two scans")
show_disclaimer()
try:
    scans = list_scans(db, actor, actor.user_id)
except Exception as err:  # shown as one sentence
    show_error(err)
    st.stop()
render_compare(db, actor, scans, current_classifier("Stored results are still shown."))
