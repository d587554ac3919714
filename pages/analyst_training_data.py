"""Analyst page: what the classifier was trained on (the shared radiograph sets)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from core import training_eda
from core.eda import DatasetUnavailable
from core.settings import load_settings
from pages.ui import require_actor

_GRID_PER_CLASS = 4


@st.cache_data(show_spinner="Reading the training manifest...")
def _manifest(root: str) -> pd.DataFrame:
    """The public training manifest (dataset metadata, no user data)."""
    return training_eda.load_manifest(Path(root))


@st.cache_data(show_spinner="Measuring a fixed sample of images per class...")
def _sample_statistics(root: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Intensity statistics of the seeded per-class sample."""
    sample = training_eda.sample_per_class(_manifest(root))
    return training_eda.intensity_statistics(Path(root), sample)


@st.cache_data(show_spinner="Reading image sizes...")
def _sizes(root: str) -> pd.DataFrame:
    """Image dimensions of every training file."""
    return training_eda.image_sizes(Path(root), _manifest(root))


require_actor("analyst")
st.title("Training data")
st.caption(
    "The public radiograph sets the classifier learns from: Kermany et al. (children, "
    "pneumonia) and the COVID-19 Radiography Database (adults)."
)

root = load_settings().shared_data_dir
try:
    manifest = _manifest(str(root))
except DatasetUnavailable:
    st.info(
        f"The training data folder ({root}) is not available on this machine, so this page "
        "has nothing to show. Set SHARED_DATA_DIR to the folder holding manifest.csv."
    )
    st.stop()

st.metric("Images", f"{len(manifest):,}")

st.subheader("Class balance per split and source")
balance = training_eda.class_balance(manifest)
st.plotly_chart(training_eda.balance_figure(balance), key="balance")
st.dataframe(balance, hide_index=True, width="stretch")
st.caption(
    "The two sources differ in age and hospital; a model can learn the source instead of the "
    "disease, so performance is reported within each source."
)

st.subheader("Pixel intensities per class")
st.caption(
    f"Seeded sample of up to {training_eda.SAMPLE_PER_CLASS} images per class "
    f"(seed {training_eda.SAMPLE_SEED}), grayscale scaled to 0-1."
)
per_image, histograms = _sample_statistics(str(root))
left, right = st.columns(2)
left.plotly_chart(training_eda.histogram_figure(histograms), key="histograms")
right.plotly_chart(training_eda.mean_std_figure(per_image), key="mean_std")

st.subheader("Sample images")
grid = training_eda.sample_per_class(manifest, per_class=_GRID_PER_CLASS)
for image_class, rows in grid.groupby("image_class", sort=True):
    st.markdown(f"**{image_class}**")
    st.image([str(root / path) for path in rows["path"]], width=160)

st.subheader("Image sizes")
st.dataframe(_sizes(str(root)), hide_index=True, width="stretch")
