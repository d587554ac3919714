"""Compare page: two of the patient's scans side by side, with the change of each finding."""

from __future__ import annotations

import streamlit as st

from pages.ui import current_classifier, get_database, require_actor, show_disclaimer
from pages.widgets import own_scans, render_compare

actor = require_actor("patient")
db = get_database()
st.title("Compare two scans")
show_disclaimer()
render_compare(
    db, actor, own_scans(db, actor), current_classifier("Stored results are still shown.")
)
