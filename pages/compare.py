"""Compare page: two of the patient's scans side by side, with the change of each finding.

Also provides :func:`render_compare`, reused by the teleconsult page.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.compare import DEFAULT_CHANGE_MARGIN, Comparison, compare_scans
from core.enhance import PARAMETER_RANGES, EnhanceSettings, enhance
from core.findings import FINDING_LABELS, FINDINGS
from core.report import overlay_heatmap
from core.rescore import restore_scan
from core.timeline import format_percent, sort_scans
from models.inference import Classifier
from pages.timeline import current_classifier, scan_label
from pages.ui import get_database, require_actor, show_disclaimer, show_error
from storage import records
from storage.db import Actor, Database
from storage.policy import AccessDenied
from storage.records import ScanRecord, ScanSummary

#: The display controls offered here, a subset of EnhanceSettings, with slider labels.
_CONTROLS: dict[str, tuple[str, float]] = {
    "window_center": ("Brightness window centre", 0.01),
    "window_width": ("Window width (smaller means more contrast)", 0.01),
    "clahe_clip_limit": ("Local contrast strength (0 is off)", 0.001),
    "gamma": ("Gamma (below 1 brightens)", 0.05),
}


def _settings_widget(key: str) -> EnhanceSettings:
    defaults = EnhanceSettings()
    with st.expander("Display settings (applied to both images alike)"):
        values = {}
        for name, (label, step) in _CONTROLS.items():
            low, high = PARAMETER_RANGES[name]
            values[name] = st.slider(
                label, min_value=float(low), max_value=float(high), value=float(getattr(defaults, name)),
                step=step, key=f"{key}_{name}",
            )
    return EnhanceSettings(**values)


def _changes_frame(comparison: Comparison) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Finding": change.label,
                "Earlier": format_percent(change.before),
                "Later": format_percent(change.after),
                "Change (points)": f"{change.delta * 100:+.0f}",
                "Verdict": change.verdict,
            }
            for change in comparison.changes
        ]
    )


def _show_images(
    pair: tuple[ScanRecord, ScanRecord], settings: EnhanceSettings, classifier: Classifier | None, key: str
) -> None:
    images = [enhance(record.pixels, settings) for record in pair]
    heatmaps: list[np.ndarray | None] = [None, None]
    if classifier is not None:
        finding = st.selectbox(
            "Show where the model looked for", [None, *FINDINGS],
            format_func=lambda f: "(no heatmap)" if f is None else FINDING_LABELS[f], key=f"{key}_heat",
        )
        if finding is not None:
            with st.spinner("Computing heatmaps..."):
                heatmaps = [classifier.heatmap(restore_scan(r.pixels, r.metadata), finding) for r in pair]
    columns = st.columns(2)
    for column, record, image, heat in zip(columns, pair, images, heatmaps, strict=True):
        column.image(overlay_heatmap(image, heat), caption=scan_label(record), width="stretch")
    if heatmaps[0] is not None:
        st.caption("Coloured areas show where the image most drove the model's score; they are not a diagnosis.")


def render_compare(
    db: Database, actor: Actor, scans: list[ScanSummary], classifier: Classifier | None, *, key: str = "compare"
) -> None:
    """Let the user pick two scans and show them side by side with the per-finding change.

    Args:
        db: Database handle.
        actor: Who looks (the patient, or a clinician with access).
        scans: The patient's scans.
        classifier: Current model, or ``None`` when unavailable (no heatmaps then).
        key: Prefix of widget keys, unique per place the view is shown.
    """
    scans = sort_scans(scans)
    if len(scans) < 2:
        st.info("Comparing needs at least two scans.")
        return
    by_id = {scan.id: scan for scan in scans}
    ids = list(by_id)
    left, right, margin_column = st.columns([2, 2, 1])
    first = left.selectbox("Earlier scan", ids, index=len(ids) - 2, format_func=lambda i: scan_label(by_id[i]), key=f"{key}_a")
    second = right.selectbox("Later scan", ids, index=len(ids) - 1, format_func=lambda i: scan_label(by_id[i]), key=f"{key}_b")
    margin = margin_column.number_input(
        "Meaningful change (points)", min_value=1, max_value=50, value=round(DEFAULT_CHANGE_MARGIN * 100), step=1,
        key=f"{key}_margin", help="Changes of this many percentage points or less count as no meaningful change.",
    ) / 100
    if first == second:
        st.info("Choose two different scans.")
        return
    version = classifier.info.version if classifier is not None else None
    comparison = compare_scans(by_id[first], by_id[second], margin=margin, current_version=version)
    if comparison.comparable:
        st.write(comparison.message)
        st.dataframe(_changes_frame(comparison), hide_index=True, key=f"{key}_table")
    else:
        st.warning(comparison.message)
    try:
        pair = (records.load_scan(db, actor, comparison.before_scan_id), records.load_scan(db, actor, comparison.after_scan_id))
    except (AccessDenied, records.RecordNotFound) as err:
        show_error(err)
        return
    _show_images(pair, _settings_widget(key), classifier, key)


def main() -> None:
    """The patient's own comparison view."""
    actor = require_actor("patient")
    db = get_database()
    st.title("Compare two scans")
    show_disclaimer()
    try:
        scans = records.list_scans(db, actor, actor.user_id)
    except AccessDenied as err:
        show_error(err)
        return
    render_compare(db, actor, scans, current_classifier())


if __name__ == "__main__":
    main()
