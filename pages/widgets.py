"""Views shared by several pages: the scan picker, a patient's timeline and the comparison.

The patient's own pages and the clinician's teleconsult page show the same views of a patient,
so they are written once here; pages import them from this module, never from another page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

import pandas as pd
import streamlit as st

from core.compare import DEFAULT_CHANGE_MARGIN, Comparison, compare_scans, default_pair
from core.enhance import PARAMETER_RANGES, EnhanceSettings
from core.findings import FINDING_LABELS, FINDINGS
from core.labels import scan_labels
from core.timeline import (
    DEFAULT_RISE_MARGIN,
    format_percent,
    format_version,
    red_flags,
    same_day_note,
    same_day_partners,
    scans_needing_rescore,
    sort_scans,
    timeline_figure,
    timeline_frame,
    timeline_table,
    version_changes,
)
from core.views import (
    NOT_SCORED_SENTENCE,
    UNKNOWN_NOT_SCORED_SENTENCE,
    VIEW_LABELS,
    View,
    is_frontal,
)
from core.words import plural
from models.inference import Classifier
from pages.readings import birth_year_of
from pages.ui import show_error
from services.rescore import rescore_scans
from services.validity import excluded_by_scan
from services.viewing import side_by_side
from storage.actor import Actor
from storage.db import Database
from storage.scans import ScanSummary, list_scans, update_scan_date, update_scan_view

_LEGEND = (
    "One line per finding and projection (solid: PA, dashed: AP, dotted: AP lying down); points "
    "of different projections are never joined, and a film of unknown view is a lone point. "
    "Diamond: a point to raise with a clinician (listed below). Open circle: scored by an older "
    "model version. Cross: the model was unsure about the image. Dotted horizontal lines: the "
    "level at which the model suggests a closer look."
)

#: The display controls of the comparison, a subset of EnhanceSettings, with slider labels.
_COMPARE_CONTROLS: dict[str, tuple[str, float]] = {
    "window_center": ("Brightness window centre", 0.01),
    "window_width": ("Window width (smaller means more contrast)", 0.01),
    "clahe_clip_limit": ("Local contrast strength (0 is off)", 0.001),
    "gamma": ("Gamma (below 1 brightens)", 0.05),
}


def own_scans(db: Database, actor: Actor) -> list[ScanSummary]:
    """The logged-in patient's scans; on failure one sentence is shown and the page stops."""
    try:
        return list_scans(db, actor, actor.user_id)
    except Exception as err:  # shown as one sentence
        show_error(err)
        st.stop()


def heatmap_picker(label: str, *, none_label: str, key: str | None = None) -> str | None:
    """A finding to draw the model's heatmap for, or ``None`` for no heatmap."""
    return st.selectbox(
        label,
        [None, *FINDINGS],
        format_func=lambda f: none_label if f is None else FINDING_LABELS[f],
        key=key,
    )


def scan_picker(
    label: str, scans: Sequence[ScanSummary], *, index: int, key: str | None = None
) -> int:
    """A select box of scans, shown by their one label and keyed by id (labels can repeat).

    Args:
        label: The widget's label.
        scans: The scans, in the order offered.
        index: Position of the preselected scan.
        key: Widget key.

    Returns:
        The chosen scan's id.
    """
    names = scan_labels(scans)
    return st.selectbox(label, list(names), index=index, format_func=names.__getitem__, key=key)


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
        The scans shown (oldest first), or ``None`` when they could not be read.
    """
    try:
        scans = sort_scans(list_scans(db, actor, patient_id))
    except Exception as err:  # shown as one sentence
        show_error(err)
        return None
    if not scans:
        st.info("There are no scans yet. Upload one on the Upload page to start the timeline.")
        return scans
    if can_edit and classifier is not None and _offer_rescore(db, actor, scans, classifier):
        scans = sort_scans(list_scans(db, actor, patient_id))
    version = classifier.info.version if classifier is not None else None
    # Findings learned from other patients than this one: never flagged, hidden unless asked.
    excluded = excluded_by_scan(scans, birth_year_of(db, actor, patient_id))
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
    frame = timeline_frame(scans, version, excluded=None if show_greyed else excluded)
    if excluded and not show_greyed:
        st.caption(
            "Findings learned from other patients than this one are left off the chart and "
            "raise no flag; switch them on under Settings to see them."
        )
    if frame.empty:
        st.info("None of these scans has a model result yet.")
    else:
        flags = red_flags(
            scans,
            classifier.info.thresholds if classifier else None,
            margin,
            version,
            excluded=excluded,
        )
        changes = version_changes(scans, version)
        same_day = {
            scan_id: same_day_note(partners)
            for scan_id, partners in same_day_partners(scans).items()
        }
        figure = timeline_figure(
            frame, flags=flags, changes=changes, current_version=version, same_day=same_day
        )
        if show_greyed:
            greyed = frozenset().union(*excluded.values())
            figure.for_each_trace(
                lambda trace: trace.update(opacity=0.35, name=f"{trace.name} (greyed)"),
                selector=lambda trace: trace.legendgroup in greyed,
            )
        st.plotly_chart(figure, key=f"{key}_chart")
        st.caption(_LEGEND)
        if changes:
            st.caption(
                "Dashed vertical lines mark where the model version changes between scans: a "
                "jump there can come from the model update, not from a change in the lungs."
            )
        if flags:
            st.subheader("Points to raise with a clinician")
            names = scan_labels(scans)
            for scan_id, reasons in flags.items():
                st.warning(f"Scan of {names[scan_id]}: " + " ".join(reasons))
        table = timeline_table(frame, flags, same_day)
        # The whole sentences are in the warnings above: the table only points to them.
        table["Red flags"] = table["Red flags"].map(lambda text: "yes, see above" if text else "")
        # A static table wraps each note; an interactive grid would cut it mid-sentence.
        st.table(table, hide_index=True)
        with st.expander("Details: every stored result and the model behind it"):
            st.table(
                timeline_table(
                    timeline_frame(scans, version, all_results=True),
                    same_day=same_day,
                    with_model=True,
                ),
                hide_index=True,
            )
    _render_unplotted(scans)
    if can_edit:
        _render_view_editor(db, actor, scans)
        _render_date_editor(db, actor, scans)
    return scans


def _render_unplotted(scans: list[ScanSummary]) -> None:
    """Say which scans are kept but not plotted, and why, one sentence per reason."""
    laterals = [scan for scan in scans if scan.view is View.LATERAL]
    unknown = [scan for scan in scans if scan.view is View.UNKNOWN and not scan.results]
    unscored = [scan for scan in scans if is_frontal(scan.view) and not scan.results]
    if laterals:
        st.caption(
            f"{plural(len(laterals), 'side (lateral) view')} in your record. {NOT_SCORED_SENTENCE}"
        )
    if unknown:
        st.caption(f"{plural(len(unknown), 'scan')} of unknown view. {UNKNOWN_NOT_SCORED_SENTENCE}")
    if unscored:
        has = "has" if len(unscored) == 1 else "have"
        st.caption(
            f"{plural(len(unscored), 'frontal scan')} {has} no model result yet and "
            f"{'is' if len(unscored) == 1 else 'are'} not plotted."
        )


def _save_and_rerun(save: Callable[[], object]) -> None:
    """Run a correction; redraw the page with it, or show why it failed in one sentence."""
    try:
        save()
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    st.rerun()


def _render_view_editor(db: Database, actor: Actor, scans: list[ScanSummary]) -> None:
    with st.expander("Correct a scan's view"):
        st.caption(
            "Only frontal films are scored and films are compared only with films of the same "
            "view. Set the view here if it is wrong or not known; a frontal film without a "
            "result can then be scored with the re-score button above."
        )
        scan_id = scan_picker("Scan", scans, index=len(scans) - 1, key="view_scan")
        current = next(scan for scan in scans if scan.id == scan_id)
        views = list(View)
        new_view = st.radio(
            "View",
            views,
            index=views.index(current.view),
            format_func=lambda v: VIEW_LABELS[v],
            key=f"view_value_{scan_id}",
        )
        if st.button("Save view", key="view_save", disabled=new_view is current.view):
            _save_and_rerun(lambda: update_scan_view(db, actor, scan_id, new_view))


def _offer_rescore(
    db: Database, actor: Actor, scans: list[ScanSummary], classifier: Classifier
) -> bool:
    """Offer to re-score scans lacking a current-model result; return whether it ran."""
    version = classifier.info.version
    pending = scans_needing_rescore(scans, version)
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
            db,
            actor,
            scans,
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


def _render_date_editor(db: Database, actor: Actor, scans: list[ScanSummary]) -> None:
    with st.expander("Correct a scan date"):
        st.caption(
            "The timeline uses the date each X-ray was taken (from the DICOM file or as you "
            "entered it at upload), never the upload time. Correct it here if it is wrong."
        )
        scan_id = scan_picker("Scan", scans, index=0, key="date_scan")
        current = next(scan for scan in scans if scan.id == scan_id)
        new_date = st.date_input(
            "Date the X-ray was taken",
            value=current.scan_date,
            max_value=date.today(),
            min_value=date(1900, 1, 1),
            key=f"date_value_{scan_id}",
        )
        if st.button("Save date", key="date_save"):
            _save_and_rerun(lambda: update_scan_date(db, actor, scan_id, new_date))


def render_compare(
    db: Database,
    actor: Actor,
    scans: list[ScanSummary],
    classifier: Classifier | None,
    *,
    key: str = "compare",
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
    names = scan_labels(scans)
    positions = {scan.id: position for position, scan in enumerate(scans)}
    pair = default_pair(scans)
    if pair is None:
        st.info(
            "No frontal view (PA, AP or AP lying down) has two scans yet, so there is no "
            "like-with-like pair to open with; the two latest scans are shown."
        )
        start = (len(scans) - 2, len(scans) - 1)
    else:
        start = (positions[pair[0]], positions[pair[1]])
    left, right, margin_column = st.columns([2, 2, 1])
    with left:
        first = scan_picker("Earlier scan", scans, index=start[0], key=f"{key}_a")
    with right:
        second = scan_picker("Later scan", scans, index=start[1], key=f"{key}_b")
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
    version = classifier.info.version if classifier is not None else None
    comparison = compare_scans(by_id[first], by_id[second], margin=margin, current_version=version)
    if comparison.view_warning is not None:
        st.warning(comparison.view_warning)
    if comparison.comparable:
        st.write(comparison.message)
        excluded = excluded_by_scan(
            [by_id[first], by_id[second]], birth_year_of(db, actor, by_id[second].owner_id)
        )
        greyed = excluded.get(first, frozenset()) | excluded.get(second, frozenset())
        st.dataframe(_changes_frame(comparison, greyed), hide_index=True, key=f"{key}_table")
        if greyed:
            st.caption(
                "Rows marked as learned from other patients come from findings the model "
                "learned from children only or adults only; their change says little here."
            )
    else:
        st.warning(comparison.message)
    settings = _display_settings(key)
    finding = None
    if classifier is not None:
        finding = heatmap_picker(
            "Show where the model looked for", none_label="(no heatmap)", key=f"{key}_heat"
        )
    pair = (comparison.before_scan_id, comparison.after_scan_id)
    try:
        with st.spinner("Computing heatmaps..." if finding else "Loading the images..."):
            images = side_by_side(db, actor, pair, settings, classifier, finding)
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    for column, scan_id, image in zip(st.columns(2), pair, images, strict=True):
        column.image(image, caption=names[scan_id], width="stretch")
    if finding is not None:
        st.caption(
            "Coloured areas show where the image most drove the model's score; they are "
            "not a diagnosis."
        )


def _display_settings(key: str) -> EnhanceSettings:
    defaults = EnhanceSettings()
    with st.expander("Display settings (applied to both images alike)"):
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


def _changes_frame(comparison: Comparison, greyed: frozenset[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Finding": change.label,
                "Earlier": format_percent(change.before),
                "Later": format_percent(change.after),
                "Change (points)": f"{change.delta * 100:+.0f}",
                "Verdict": change.verdict,
                "Learned from other patients": "yes" if change.finding in greyed else "",
            }
            for change in comparison.changes
        ]
    )
