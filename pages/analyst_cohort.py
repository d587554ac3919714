"""Analyst page: de-identified counts of the app's stored results, and the data-shift monitor."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import shift
from core.cohort import GROUP_COLUMNS, MIN_USERS, cohort_figure
from core.eda import DatasetUnavailable
from core.settings import load_settings
from pages.ui import get_database, require_actor, show_error
from services.cohort import cohort_summary, shift_report, training_shift_reference

_GROUP_LABELS = {"finding": "Finding", "month": "Month", "age_band": "Age band", "sex": "Sex"}


@st.cache_data(show_spinner="Measuring the training-data reference sample...")
def _training_reference(root: str) -> shift.ShiftSample:
    """Training side of the shift comparison (public data only, so safe to cache globally)."""
    return training_shift_reference(Path(root))


actor = require_actor("analyst")
db = get_database()
st.title("Cohort overview")
st.caption(
    f"Counts over every result stored in this app. Groups with fewer than {MIN_USERS} "
    "different people are left out, and so are some larger ones, so that no left-out count "
    "can be worked out from totals or from other groupings; rows may therefore not add up. "
    "No individual record or identifier is ever shown here."
)

by = st.multiselect(
    "Group by",
    list(GROUP_COLUMNS),
    default=["finding"],
    format_func=lambda name: _GROUP_LABELS[name],
)
try:
    table = cohort_summary(db, actor, by)
except Exception as err:  # shown as one sentence
    show_error(err)
    st.stop()

if table.empty:
    st.info(
        "No group is large enough to show without singling someone out "
        f"(or fewer than {MIN_USERS} people have results yet)."
    )
else:
    if by:
        st.plotly_chart(
            cohort_figure(table, x=by[0], color=by[1] if len(by) > 1 else None), key="cohort"
        )
    st.dataframe(
        table.rename(columns=_GROUP_LABELS | {"count": "Results", "users": "People"}),
        hide_index=True,
        width="stretch",
    )

st.header("Data-shift monitor")
st.caption(
    "Do the scans people upload still resemble the training data? Intensities are compared "
    "with a two-sample Kolmogorov-Smirnov test; age bands, finding rates and sex mix with a "
    f"chi-square test, leaving out any quantity with a group under {MIN_USERS} people. "
    f"A shift is flagged when p < {shift.ALPHA} after Bonferroni correction "
    "for the number of tests. A shift is a prompt to check the model, not proof that it fails."
)
root = load_settings().shared_data_dir
try:
    reference = _training_reference(str(root))
except DatasetUnavailable:
    st.info("The training data folder is not available here, so there is nothing to compare with.")
    st.stop()

try:
    results = shift_report(db, actor, reference)
except Exception as err:  # shown as one sentence
    show_error(err)
    st.stop()
if results is None:
    st.info(f"Fewer than {MIN_USERS} people have uploaded scans, so no comparison is shown.")
    st.stop()

shifted = results[results["verdict"] == "shift"]
if len(shifted):
    st.warning("Shift detected in: " + ", ".join(shifted["quantity"]) + ".")
else:
    st.success("No shift detected in the quantities that could be tested.")
st.dataframe(results, hide_index=True, width="stretch")
