"""Compare page: two of the patient's scans side by side, with the change of each finding."""

from __future__ import annotations

import streamlit as st

from pages.ui import current_classifier, require_actor, show_disclaimer
from pages.widgets import own_record, render_compare

actor = require_actor("patient")
st.title("Compare two scans")
show_disclaimer()
classifier = current_classifier("Stored results are still shown.")
render_compare(actor, own_record(actor, classifier), classifier)
