"""Timeline page: each finding's model probability over the patient's scan dates.

Also provides :func:`render_timeline` and :func:`current_classifier`, reused by
the teleconsult page for the clinician's view of a patient.
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from core.findings import FINDING_LABELS
from core.imaging import DecodedScan
from core.rescore import rescore, restore_scan
from core.timeline import (
    DEFAULT_RISE_MARGIN,
    format_version,
    red_flags,
    scans_needing_rescore,
    sort_scans,
    timeline_figure,
    timeline_frame,
    timeline_table,
    version_changes,
)
from models.inference import Classifier, ModelUnavailable
from pages.ui import get_database, load_classifier, require_actor, show_disclaimer, show_error
from storage import records
from storage.db import Actor, Database
from storage.policy import AccessDenied
from storage.records import ResultIn, ScanSummary

_LEGEND = (
    "One line per finding, one marker per scan. Diamond: a point to raise with a clinician "
    "(listed below). Open circle: scored by an older model version. Cross: the model was unsure "
    "about the image. Dotted lines: the level at which the model suggests a closer look."
)


def current_classifier() -> Classifier | None:
    """The cached classifier, or ``None`` after telling the user why it is unavailable."""
    try:
        return load_classifier()
    except ModelUnavailable as err:
        st.info(f"{err} Stored results are still shown.")
        return None


def scan_label(scan: ScanSummary) -> str:
    """How a scan is named in pickers: its date and file name."""
    return f"{scan.scan_date.isoformat()} - {scan.filename}"


def _render_rescore(db: Database, actor: Actor, scans: list[ScanSummary], classifier: Classifier) -> bool:
    """Offer to re-score scans lacking a current-model result; return whether it ran."""
    version = classifier.info.version
    pending = scans_needing_rescore(scans, version)
    if not pending:
        return False
    st.info(
        f"{len(pending)} of your scans were scored by an older model version. Re-scoring them with "
        f"the current model ({format_version(version)}) puts all points on the same scale; the older "
        "results are kept and stay listed below."
    )
    if not st.button(f"Re-score {len(pending)} scan(s) with model {format_version(version)}", key="rescore"):
        return False
    bar = st.progress(0.0, text="Re-scoring...")
    try:
        scored = rescore(
            pending,
            load=lambda scan_id: _restored(db, actor, scan_id),
            predict=lambda scan: classifier.predict([scan])[0],
            on_progress=lambda done, total: bar.progress(done / total, text=f"Re-scored {done} of {total}"),
        )
        records.add_results(db, actor, [(scan_id, ResultIn.from_prediction(p, classifier.info)) for scan_id, p in scored])
    except (AccessDenied, records.RecordNotFound) as err:
        show_error(err)
        return False
    st.success(f"Re-scored {len(pending)} scan(s) with model {format_version(version)}.")
    return True


def _restored(db: Database, actor: Actor, scan_id: int) -> DecodedScan:
    record = records.load_scan(db, actor, scan_id)
    return restore_scan(record.pixels, record.metadata)


def _render_date_editor(db: Database, actor: Actor, scans: list[ScanSummary]) -> None:
    with st.expander("Correct a scan date"):
        st.caption(
            "The timeline uses the date each X-ray was taken (from the DICOM file or as you entered "
            "it at upload), never the upload time. Correct it here if it is wrong."
        )
        by_id = {scan.id: scan for scan in scans}
        scan_id = st.selectbox("Scan", list(by_id), format_func=lambda i: scan_label(by_id[i]), key="date_scan")
        new_date = st.date_input(
            "Date the X-ray was taken", value=by_id[scan_id].scan_date, max_value=date.today(),
            min_value=date(1900, 1, 1), key=f"date_value_{scan_id}",
        )
        if st.button("Save date", key="date_save"):
            try:
                records.update_scan_date(db, actor, scan_id, new_date)
            except (AccessDenied, records.RecordNotFound) as err:
                show_error(err)
                return
            st.rerun()


def render_timeline(
    db: Database,
    actor: Actor,
    patient_id: int,
    classifier: Classifier | None,
    *,
    can_edit: bool,
    key: str = "timeline",
) -> list[ScanSummary] | None:
    """Show the chart, red flags and table of one patient's scans.

    Args:
        db: Database handle.
        actor: Who looks (the patient, or a clinician with access).
        patient_id: Whose scans.
        classifier: Current model, or ``None`` when unavailable.
        can_edit: The patient's own view: offers re-scoring and date correction.
        key: Prefix of widget keys, unique per place the timeline is shown.

    Returns:
        The scans shown (oldest first), or ``None`` when access was refused.
    """
    try:
        scans = sort_scans(records.list_scans(db, actor, patient_id))
    except AccessDenied as err:
        show_error(err)
        return None
    if not scans:
        st.info("There are no scans yet. Upload one on the Upload page to start the timeline.")
        return scans
    if can_edit and classifier is not None and _render_rescore(db, actor, scans, classifier):
        scans = sort_scans(records.list_scans(db, actor, patient_id))
    version = classifier.info.version if classifier is not None else None
    with st.expander("Settings"):
        margin = st.slider(
            "Flag a finding that rose by more than (percentage points) since the previous scan",
            min_value=5, max_value=50, value=round(DEFAULT_RISE_MARGIN * 100), step=1, key=f"{key}_margin",
        ) / 100
    frame = timeline_frame(scans, version)
    if frame.empty:
        st.info("None of these scans has a model result yet.")
    else:
        flags = red_flags(scans, classifier.info.thresholds if classifier else None, margin, version)
        changes = version_changes(scans, version)
        figure = timeline_figure(frame, flags=flags, changes=changes, current_version=version)
        st.plotly_chart(figure, key=f"{key}_chart")
        st.caption(_LEGEND)
        if changes:
            st.caption(
                "Dashed vertical lines mark where the model version changes between scans: a jump there "
                "can come from the model update, not from a change in the lungs."
            )
        if flags:
            st.subheader("Points to raise with a clinician")
            by_id = {scan.id: scan for scan in scans}
            for scan_id, reasons in flags.items():
                st.warning(f"Scan of {by_id[scan_id].scan_date.isoformat()}: " + " ".join(reasons))
        st.dataframe(timeline_table(frame, flags), hide_index=True, key=f"{key}_table")
        with st.expander("Every stored result, older model versions included"):
            st.dataframe(timeline_table(timeline_frame(scans, version, all_results=True)), hide_index=True)
    unscored = [scan for scan in scans if not scan.results]
    if unscored:
        st.caption(f"{len(unscored)} scan(s) have no model result yet and are not plotted.")
    if can_edit:
        _render_date_editor(db, actor, scans)
    return scans


def main() -> None:
    """The patient's own timeline."""
    actor = require_actor("patient")
    db = get_database()
    st.title("Your timeline")
    st.write(
        "How the model's reading of your X-rays has changed over time, for "
        + ", ".join(label.lower() for label in FINDING_LABELS.values())
        + "."
    )
    show_disclaimer()
    render_timeline(db, actor, actor.user_id, current_classifier(), can_edit=True)


if __name__ == "__main__":
    main()
