"""Timeline page: each finding's model probability over the patient's scan dates."""

from __future__ import annotations

import streamlit as st

from core.findings import FINDING_LABELS
from core.words import in_sentence
from pages.ui import current_classifier, require_actor, show_disclaimer
from pages.widgets import render_timeline

actor = require_actor("patient")
st.title("Your timeline")
st.write(
    "How the model's reading of your X-rays has changed over time, for "
    + ", ".join(in_sentence(label) for label in FINDING_LABELS.values())
    + "."
)
show_disclaimer()
render_timeline(
    actor, actor.user_id, current_classifier("Stored results are still shown."), can_edit=True
)
