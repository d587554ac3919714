"""Analyst page: exploratory analysis of the public NIH ChestX-ray14 metadata."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import eda
from pages.ui import require_actor

_ANY = "Any"


@st.cache_data(show_spinner="Loading the NIH ChestX-ray14 metadata...")
def _public_frame() -> tuple[pd.DataFrame, int]:
    """The public metadata with impossible ages removed, and how many were removed."""
    return eda.exclude_impossible_ages(eda.load_nih_metadata())


@st.cache_data(max_entries=128, show_spinner=False)
def _aggregates(
    sexes: tuple[str, ...],
    age_range: tuple[int, int],
    views: tuple[str, ...],
    finding: str | None,
) -> dict[str, object]:
    """Every chart's aggregate for one filter selection (public data only, so safe to share)."""
    frame, _ = _public_frame()
    selected = eda.apply_filters(
        frame, eda.NihFilters(sexes=sexes, age_range=age_range, views=views, finding=finding)
    )
    return {
        "summary": eda.summary(selected),
        "ages": eda.age_distribution(selected),
        "bands": eda.findings_by_band_and_sex(selected),
        "per_image": eda.findings_per_image(selected),
        "cooccurrence": eda.cooccurrence(selected),
        "visits": eda.visits_per_patient(selected),
        "views": eda.view_mix(selected),
    }


# cache_resource, not cache_data: the figures hold only public aggregates and are never
# mutated, and handing back the same objects skips a pickle round trip (~0.15 s a rerun).
@st.cache_resource(max_entries=64, show_spinner=False)
def _figures(
    sexes: tuple[str, ...],
    age_range: tuple[int, int],
    views: tuple[str, ...],
    finding: str | None,
) -> dict[str, go.Figure]:
    """The page's charts for one filter selection."""
    data = _aggregates(sexes, age_range, views, finding)
    return {
        "ages": eda.age_figure(data["ages"]),
        "bands": eda.band_figure(data["bands"]),
        "per_image": eda.per_image_figure(data["per_image"]),
        "cooccurrence": eda.cooccurrence_figure(data["cooccurrence"]),
        "visits": eda.visits_figure(data["visits"]),
        "views": eda.view_figure(data["views"]),
    }


require_actor("analyst")
st.title("NIH ChestX-ray14: dataset overview")
st.caption(
    "Public metadata of 112,120 frontal radiographs from 30,805 patients (NIH Clinical Center), "
    "as shipped with the torchxrayvision package. These are dataset statistics, not patient data "
    "of this app."
)

try:
    public, excluded = _public_frame()
except eda.DatasetUnavailable as err:
    st.error(str(err))
    st.stop()

with st.container(border=True):
    left, middle, right, last = st.columns(4)
    sexes = left.multiselect("Sex", ["F", "M"], default=["F", "M"])
    views = middle.multiselect("View position", ["PA", "AP"], default=["PA", "AP"])
    finding = right.selectbox("Finding", [_ANY, *eda.finding_options()])
    age_range = last.slider("Age (years)", 0, eda.MAX_PLAUSIBLE_AGE, (0, eda.MAX_PLAUSIBLE_AGE))

if not sexes or not views:
    # An empty choice here means "none of them", unlike NihFilters where empty means "any".
    st.info("No images match these filters.")
    st.stop()

selection = (
    tuple(sorted(sexes)),
    tuple(age_range),
    tuple(sorted(views)),
    None if finding == _ANY else finding,
)
counts = _aggregates(*selection)["summary"]
a, b, c, d = st.columns(4)
a.metric("Images", f"{counts['images']:,}")
b.metric("Patients", f"{counts['patients']:,}")
c.metric("Images with a finding", f"{counts['with_findings']:,}")
d.metric("Impossible ages excluded", f"{excluded:,}")
st.caption(
    f"Images whose recorded age is above {eda.MAX_PLAUSIBLE_AGE} years are data-entry errors and "
    f"are left out of every chart ({excluded:,} in this file; the 2020 revision corrected the "
    "ages of up to 414 years found in the original 2017 release)."
)

if counts["images"] == 0:
    st.info("No images match these filters.")
    st.stop()

figures = _figures(*selection)
st.subheader("Age distribution")
st.plotly_chart(figures["ages"], key="ages")

st.subheader("Findings by age band and sex")
st.caption("Share of the images in each age band and sex that carry each finding.")
st.plotly_chart(figures["bands"], key="bands")

left, right = st.columns(2)
with left:
    st.subheader("Findings per image")
    st.plotly_chart(figures["per_image"], key="per_image")
with right:
    st.subheader("View position")
    st.caption("PA: standing, back to front. AP: front to back, often bedside.")
    st.plotly_chart(figures["views"], key="views")

st.subheader("Co-occurrence of the 14 findings")
st.caption("Images carrying both findings; the diagonal is each finding's own count.")
st.plotly_chart(figures["cooccurrence"], key="cooccurrence")

st.subheader("Follow-up visits per patient")
st.plotly_chart(figures["visits"], key="visits")
