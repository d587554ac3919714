"""Views shared by several pages: the scan picker, a patient's timeline and the comparison.

The patient's own pages and the clinician's teleconsult page show the same views of a patient,
so they are written once here; pages import them from this module, never from another page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from core.compare import DEFAULT_CHANGE_MARGIN, Comparison, compare_readings
from core.enhance import PARAMETER_RANGES, EnhanceSettings
from core.findings import FINDING_LABELS, FINDINGS
from core.report import HEATMAP_CAPTION
from core.scan_reading import DEFAULT_RISE_MARGIN
from core.timeline import format_percent, format_version
from core.views import VIEW_LABELS, View
from core.words import plural
from pages.ui import get_database, show_error, viewing
from services.handles import Actor
from services.imports import ImportReport
from services.records import PatientRecord, PatientTimeline, read_patient, side_by_side, timeline_of
from services.rescore import change_scan_date, change_scan_view, rescore_scans

if TYPE_CHECKING:
    from services.handles import Classifier

_LEGEND = (
    "One line per finding and projection (solid: PA, dashed: AP, dotted: AP lying down); points "
    "of different projections are never joined. Diamond: a film that needs attention (see the "
    "table). Open circle, not joined: a film whose view is uncertain. Dotted horizontal lines: "
    "the level at which the model suggests a closer look. Films without a number (side views, "
    "films the model was unsure about, films awaiting re-scoring) have no point; the table says "
    "why."
)

#: The display controls of the comparison, a subset of EnhanceSettings, with slider labels.
_COMPARE_CONTROLS: dict[str, tuple[str, float]] = {
    "window_center": ("Brightness window centre", 0.01),
    "window_width": ("Window width (smaller means more contrast)", 0.01),
    "clahe_clip_limit": ("Local contrast strength (0 is off)", 0.001),
    "gamma": ("Gamma (below 1 brightens)", 0.05),
}


def patient_record(
    actor: Actor,
    patient_id: int,
    classifier: Classifier | None,
    *,
    margin: float | None = None,
    seen_in: str | None = None,
) -> PatientRecord | None:
    """The patient's record read for this run; on failure one sentence is shown, None returned.

    The read is audited once per viewing: ``seen_in`` (a teleconsult's), else this page
    visit's (:func:`pages.ui.viewing`).
    """
    seen_in = seen_in or viewing()
    try:
        if margin is None:
            return read_patient(get_database(), actor, patient_id, classifier, viewing=seen_in)
        return read_patient(
            get_database(), actor, patient_id, classifier, margin=margin, viewing=seen_in
        )
    except Exception as err:  # shown as one sentence
        show_error(err)
        return None


def own_record(actor: Actor, classifier: Classifier | None) -> PatientRecord:
    """The logged-in patient's record; on failure one sentence is shown and the page stops."""
    record = patient_record(actor, actor.user_id, classifier)
    if record is None:
        st.stop()
    return record


def heatmap_picker(label: str, *, none_label: str, key: str | None = None) -> str | None:
    """A finding to draw the model's heatmap for, or ``None`` for no heatmap."""
    return st.selectbox(
        label,
        [None, *FINDINGS],
        format_func=lambda f: none_label if f is None else FINDING_LABELS[f],
        key=key,
    )


def scan_picker(
    label: str, record: PatientRecord, *, scan_id: int | None = None, key: str | None = None
) -> int:
    """A select box of a record's scans, shown by their one label and keyed by id.

    Args:
        label: The widget's label.
        record: The patient's record.
        scan_id: The preselected scan (default: the latest).
        key: Widget key.

    Returns:
        The chosen scan's id.
    """
    names = record.labels
    ids = list(names)
    index = ids.index(scan_id) if scan_id in names else len(ids) - 1
    return st.selectbox(label, ids, index=index, format_func=names.__getitem__, key=key)


@st.fragment
def render_timeline(
    actor: Actor,
    patient_id: int,
    classifier: Classifier | None,
    *,
    can_edit: bool,
    key: str = "timeline",
    seen_in: str | None = None,
) -> PatientRecord | None:
    """Show the chart, the attention sentence and the table of one patient's scans.

    A fragment: its settings, re-scoring and corrections rerun the timeline only (a
    correction reruns the whole page, whose other parts show the scan too).

    Args:
        actor: Who looks (the patient, or a clinician with access).
        patient_id: Whose scans.
        classifier: Current model, or ``None`` when unavailable.
        can_edit: The patient's own view: offers re-scoring and date and view correction.
        key: Prefix of widget keys, unique per place the timeline is shown.
        seen_in: The viewing its reads are audited in (a teleconsult's); None: this page
            visit's.

    Returns:
        The record shown, or ``None`` when it could not be read.
    """
    with st.expander("Settings"):
        show_greyed = st.toggle(
            "Also plot findings learned from other patients (children or adults)",
            value=False,
            key=f"{key}_show_greyed",
            help="Some findings were learned from children aged 1-5 only, others from adults "
            "only; for a patient outside that group their numbers say little.",
        )
        margin = (
            st.slider(
                "Flag a finding that rose by more than (percentage points) since the previous scan",
                min_value=5,
                max_value=50,
                value=round(DEFAULT_RISE_MARGIN * 100),
                step=1,
                key=f"{key}_margin",
            )
            / 100
        )
    record = patient_record(actor, patient_id, classifier, margin=margin, seen_in=seen_in)
    if record is None:
        return None
    if not record.scans:
        st.info("There are no scans yet. Upload one on the Upload page to start the timeline.")
        return record
    timeline = timeline_of(record, show_greyed=show_greyed)
    if can_edit and classifier is not None and _offer_rescore(actor, timeline, classifier):
        record = patient_record(actor, patient_id, classifier, margin=margin, seen_in=seen_in)
        if record is None:
            return None
        timeline = timeline_of(record, show_greyed=show_greyed)
    if timeline.greyed_hidden:
        st.caption(
            "Findings learned from other patients than this one are left off the chart and "
            "raise no flag; switch them on under Settings to see them."
        )
    if timeline.figure is None:
        st.info("None of these scans has a number to plot yet.")
    else:
        st.plotly_chart(timeline.figure, key=f"{key}_chart")
        st.caption(_LEGEND)
    if timeline.attention:
        st.warning(timeline.attention)
    # A static table wraps each sentence; an interactive grid would cut it mid-sentence.
    st.table(timeline.table, hide_index=True)
    for sentence in timeline.unplotted:
        st.caption(sentence)
    with st.expander("Details: every stored result and the model behind it"):
        st.table(timeline.details, hide_index=True)
    if can_edit:
        _render_view_editor(actor, record, classifier)
        _render_date_editor(actor, record)
    return record


def _save_and_rerun(save: Callable[[], object]) -> None:
    """Run a correction; redraw the page with it, or show why it failed in one sentence."""
    try:
        save()
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    st.rerun()


def _render_view_editor(actor: Actor, record: PatientRecord, classifier: Classifier | None) -> None:
    with st.expander("Correct a scan's view"):
        st.caption(
            "Only frontal films are scored and films are compared only with films of the same "
            "view. Set the view here if it is wrong or not known: the scan is read again at "
            "once (a frontal film is scored, a side view keeps no number)."
        )
        scan_id = scan_picker("Scan", record, key="view_scan")
        current = record.scan(scan_id)
        views = list(View)
        new_view = st.radio(
            "View",
            views,
            index=views.index(current.view),
            format_func=lambda v: VIEW_LABELS[v],
            key=f"view_value_{scan_id}",
        )
        if st.button("Save view", key="view_save", disabled=new_view is current.view):
            _save_and_rerun(
                lambda: change_scan_view(get_database(), actor, scan_id, new_view, classifier)
            )


def _offer_rescore(actor: Actor, timeline: PatientTimeline, classifier: Classifier) -> bool:
    """Offer to re-score scans lacking a current-model result; return whether it ran."""
    version = classifier.info.version
    pending = timeline.pending_rescore
    if not pending:
        return False
    st.info(
        f"{plural(len(pending), 'frontal scan')} of yours "
        f"{'has' if len(pending) == 1 else 'have'} no result of the current model "
        f"({format_version(version)}): scored by an older version, or not yet scored. Scoring "
        "them puts all points on the same scale; older results are kept and stay listed below. "
        "Side views and scans of unknown view are not scored."
    )
    if not st.button(
        f"Re-score {plural(len(pending), 'scan')} with model {format_version(version)}",
        key="rescore",
    ):
        return False
    bar = st.progress(0.0, text="Re-scoring...")
    try:
        outcome = rescore_scans(
            get_database(),
            actor,
            timeline.record.scans,
            classifier,
            on_progress=lambda done, total: bar.progress(
                done / total, text=f"Re-scored {done} of {total}"
            ),
        )
    except Exception as err:  # shown as one sentence
        show_error(err)
        return False
    st.success(
        f"Re-scored {plural(outcome.rescored, 'scan')} with model "
        f"{format_version(outcome.model_version)}."
    )
    return True


def _render_date_editor(actor: Actor, record: PatientRecord) -> None:
    with st.expander("Correct a scan date"):
        st.caption(
            "The timeline uses the date each X-ray was taken (from the DICOM file or as you "
            "entered it at upload), never the upload time. Correct it here if it is wrong."
        )
        scan_id = scan_picker("Scan", record, scan_id=record.scans[0].id, key="date_scan")
        current = record.scan(scan_id)
        new_date = st.date_input(
            "Date the X-ray was taken",
            value=current.scan_date,
            max_value=date.today(),
            min_value=date(1900, 1, 1),
            key=f"date_value_{scan_id}",
        )
        if st.button("Save date", key="date_save"):
            _save_and_rerun(lambda: change_scan_date(get_database(), actor, scan_id, new_date))


@st.fragment
def render_compare(
    actor: Actor,
    record: PatientRecord,
    classifier: Classifier | None,
    *,
    key: str = "compare",
    seen_in: str | None = None,
) -> None:
    """Let the user pick two scans and show them side by side with the per-finding change.

    A fragment: choosing scans, the margin or the display reruns the comparison only.

    Args:
        actor: Who looks (the patient, or a clinician with access).
        record: The patient's record.
        classifier: Current model, or ``None`` when unavailable (no heatmaps then).
        key: Prefix of widget keys, unique per place the view is shown.
        seen_in: The viewing its reads are audited in (a teleconsult's); None: this page
            visit's.
    """
    readings = record.readings
    if len(readings) < 2:
        st.info("Comparing needs at least two scans.")
        return
    pair = record.compare_default
    if pair is None:
        st.info(
            "No frontal view (PA, AP or AP lying down) has two scored films of a certain view "
            "yet, so there is no like-with-like pair to open with; the two latest scans are shown."
        )
        pair = (readings[-2].scan_id, readings[-1].scan_id)
    left, right, margin_column = st.columns([2, 2, 1])
    with left:
        first = scan_picker("Earlier scan", record, scan_id=pair[0], key=f"{key}_a")
    with right:
        second = scan_picker("Later scan", record, scan_id=pair[1], key=f"{key}_b")
    margin = (
        margin_column.number_input(
            "Meaningful change (points)",
            min_value=1,
            max_value=50,
            value=round(DEFAULT_CHANGE_MARGIN * 100),
            step=1,
            key=f"{key}_margin",
            help="Changes of this many percentage points or less count as no meaningful change.",
        )
        / 100
    )
    if first == second:
        st.info("Choose two different scans.")
        return
    comparison = compare_readings(record.reading(first), record.reading(second), margin=margin)
    if comparison.view_warning is not None:
        st.warning(comparison.view_warning)
    if comparison.comparable:
        st.write(comparison.message)
        st.dataframe(_changes_frame(comparison), hide_index=True, key=f"{key}_table")
        if any(change.greyed for change in comparison.changes):
            st.caption(
                "Rows marked as learned from other patients come from findings the model "
                "learned from children only or adults only; their change says little here."
            )
    else:
        st.warning(comparison.message)
    settings = _display_settings(key)
    finding = None
    if classifier is not None and comparison.comparable:
        finding = heatmap_picker(
            "Show where the model looked for", none_label="(no heatmap)", key=f"{key}_heat"
        )
    shown = (comparison.before_scan_id, comparison.after_scan_id)
    try:
        with st.spinner("Computing heatmaps..." if finding else "Loading the images..."):
            images = side_by_side(
                get_database(),
                actor,
                shown,
                settings,
                classifier,
                finding,
                viewing=seen_in or viewing(),
            )
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    names = record.labels
    for column, scan_id, image in zip(st.columns(2), shown, images, strict=True):
        column.image(image, caption=names[scan_id], width="stretch")
    if finding is not None:
        st.caption(HEATMAP_CAPTION)


def _display_settings(key: str) -> EnhanceSettings | None:
    """One display setting for both films, or None to show each as saved."""
    with st.expander("Display settings (applied to both images alike)"):
        alike = st.toggle(
            "Show both films with the same settings (otherwise each as saved)",
            value=False,
            key=f"{key}_alike",
        )
        if not alike:
            return None
        defaults = EnhanceSettings()
        values = {}
        for name, (label, step) in _COMPARE_CONTROLS.items():
            low, high = PARAMETER_RANGES[name]
            values[name] = st.slider(
                label,
                min_value=float(low),
                max_value=float(high),
                value=float(getattr(defaults, name)),
                step=step,
                key=f"{key}_{name}",
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
                "Learned from other patients": "yes" if change.greyed else "",
            }
            for change in comparison.changes
        ]
    )


def render_import_report(report: ImportReport) -> None:
    """What became of each imported file: the summary, then one row per file with its
    reading's headline (or why it was not stored), in a table that wraps its sentences."""
    (st.success if report.all_ok else st.warning)(report.summary)
    st.table(
        pd.DataFrame(
            {
                "File": [item.filename for item in report.items],
                "Outcome": [
                    item.error
                    or (item.reading.headline if item.reading is not None else " ".join(item.notes))
                    for item in report.items
                ],
            }
        ),
        hide_index=True,
    )


def import_progress(bar: Any) -> Callable[[int, int, Any], None]:
    """An import's ``on_progress`` that moves ``bar`` (an ``st.progress``) file by file."""
    return lambda done, total, item: bar.progress(
        done / total, text=f"{done} of {total}: {item.filename}"
    )
