"""Analyst page: measured performance of the classifier on held-out test sets."""

from __future__ import annotations

import streamlit as st

from core import performance
from core.findings import DISCLAIMER
from core.settings import load_settings
from pages.ui import require_actor

require_actor("analyst")
st.title("Model performance")
st.caption(DISCLAIMER)

try:
    report = performance.load_metrics(performance.metrics_path(load_settings().checkpoint_path))
except performance.MetricsError as err:
    st.error(str(err))
    st.stop()
if report is None:
    st.info("No evaluation has been run yet. Run `make evaluate` to measure the model.")
    st.stop()

model = performance.model_summary(report)
a, b, c, d = st.columns(4)
a.metric("Model", model["name"])
b.metric("Version", model["version"])
c.metric("Checkpoint", model["sha256"])
d.metric("Training time", model["training_time"])

st.subheader("Targets")
targets = performance.targets_table(report)
missed = targets[targets["status"] == "MISSED"]
if len(missed):
    st.warning(
        f"{len(missed)} of {len(targets)} targets are missed: " + "; ".join(missed["target"]) + "."
    )
st.dataframe(targets, hide_index=True, width="stretch")

st.subheader("Who each finding is valid for")
validity = performance.validity_table(report)
if validity.empty:
    st.info("This evaluation report has no validity table; run `python -m models.evaluate`.")
else:
    rule = report.get("validity", {}).get("rule")
    if rule:
        st.caption(f"Rule: {rule}")
    st.dataframe(validity, hide_index=True, width="stretch")

table = performance.evaluation_table(report)
sources = list(dict.fromkeys(table["source"]))
if not sources:
    st.info("The evaluation report has no per-source results.")
else:
    st.subheader("Per test set")
    st.caption(
        "Each test set comes from one source hospital population; a finding is judged within "
        "its own source so that the model cannot score by telling children from adults."
    )
    # One test set at a time: tabs would draw every set's dozen charts on each visit.
    source = st.segmented_control(
        "Test set",
        sources,
        default=sources[0],
        format_func=performance.source_label,
        key="performance_source",
    )
    if source is None:  # a second click on the chosen set clears the choice
        source = sources[0]
    rows = table[table["source"] == source].drop(columns="source")
    st.dataframe(rows, hide_index=True, width="stretch")
    roc = performance.roc_figure(report, source)
    if roc is not None:
        st.markdown("**ROC curves**")
        st.plotly_chart(roc, key=f"roc_{source}")
    columns = st.columns(max(len(rows), 1))
    # Not strict: with no rows there is still one (empty) column.
    for column, finding in zip(columns, rows["finding"], strict=False):
        fig = performance.finding_confusion_figure(report, source, finding)
        if fig is not None:
            column.plotly_chart(fig, key=f"confusion_{source}_{finding}")
    reliability = performance.reliability_figure(report, source)
    if reliability is not None:
        st.markdown("**Reliability diagram** (points on the diagonal are well calibrated)")
        st.plotly_chart(reliability, key=f"reliability_{source}")

three_way = performance.three_way_figure(report)
if three_way is not None:
    st.subheader("Normal, bacterial or viral")
    st.plotly_chart(three_way, key="three_way")

abstention = performance.abstention_table(report)
if not abstention.empty:
    st.subheader("Abstention")
    st.caption(
        "The model should answer on real chest radiographs and decline anything else; "
        '"NO" marks an input it should have refused but did not.'
    )
    st.dataframe(abstention, hide_index=True, width="stretch")

training = performance.training_figure(report)
st.subheader("Training curves")
if training is None:
    st.info("The report holds no training history.")
else:
    st.plotly_chart(training, key="training")
