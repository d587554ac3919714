"""My scans: the logged-in patient's stored scans; the selected one is shown and can be deleted.

The scan shown, the scan named in the delete confirmation and the scan deleted are one and the
same: all three come from the picker's value in the same run, and the confirmation's widgets
are keyed by that scan's id, so a confirmation given for one scan never applies to another.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.annotations import mark_labels
from core.enhance import enhance_as_saved
from core.findings import FINDING_LABELS, top_finding
from core.labels import scan_labels
from core.localtime import format_local
from core.overlay import draw_annotations, overlay_heatmap
from core.thumbnails import thumbnail_png
from core.timeline import format_version, red_flags
from core.views import NOT_SCORED_SENTENCE, UNKNOWN_NOT_SCORED_SENTENCE, View, is_frontal
from core.words import plural
from pages.readings import birth_year_of, render_reading
from pages.ui import browser_zone, get_database, require_actor, show_disclaimer, show_error
from pages.widgets import own_scans
from services.validity import excluded_by_scan, reading_for
from services.viewing import OpenedScan, open_scan
from storage.actor import Actor
from storage.db import Database
from storage.notes import mark_notes_read, unread_note_counts
from storage.scans import ScanSummary, delete_scan, load_original

#: Session key of the sentence confirming the last deletion (shown once after the rerun).
_DELETED_KEY = "history_deleted"
_CHOICE_KEY = "history_choice"


def _top_finding(scan: ScanSummary, excluded: frozenset[str]) -> str:
    result = scan.latest_result
    if result is None:
        return "not analysed" if is_frontal(scan.view) else "not scored (view)"
    if result.abstained:
        return "model unsure"
    kept = {k: v for k, v in result.probabilities.items() if k not in excluded}
    name = top_finding(kept, result.thresholds)
    if name is None:
        return "none above its level"
    return f"{FINDING_LABELS[name]} ({result.probabilities[name]:.0%})"


def _render_list(
    scans: list[ScanSummary],
    excluded: dict[int, frozenset[str]],
    names: dict[int, str],
    unread: dict[int, int],
) -> None:
    flags = red_flags(scans, excluded=excluded)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "scan": names[s.id],
                    "top finding": _top_finding(s, excluded.get(s.id, frozenset())),
                    "new notes": plural(unread[s.id], "new note") if s.id in unread else "",
                    "needs attention": "yes, see below" if s.id in flags else "",
                }
                for s in reversed(scans)
            ]
        ),
        hide_index=True,
    )
    if flags:
        # Full sentences, never cut by a table cell.
        verb = "needs" if len(flags) == 1 else "need"
        st.warning(
            f"{plural(len(flags), 'scan')} {verb} attention: a finding is above its level or "
            "rose quickly. Discuss them with your clinician."
        )
        for scan in reversed(scans):
            if scan.id in flags:
                st.warning(f"Scan of {names[scan.id]}: " + " ".join(flags[scan.id]))
    if any(excluded.values()):
        st.caption(
            "Findings learned from other patients than you (children or adults) are left out "
            "of the top finding and of these points; the scan itself shows them greyed."
        )


def _render_unread(unread: dict[int, int]) -> None:
    if not unread:
        return
    count = sum(unread.values())
    st.badge(
        f"{plural(count, 'new note')} from your clinicians",
        icon=":material/mark_email_unread:",
        color="orange",
    )
    st.caption("Choose a scan marked with new notes below to read them.")


def _render_title(opened: OpenedScan, name: str) -> None:
    record = opened.record
    thumb, words = st.columns([1, 6])
    thumb.image(thumbnail_png(record.pixels), width="content")
    words.subheader(name)
    words.caption(f"Saved on {format_local(record.created_at, browser_zone())}.")


def _render_original(db: Database, actor: Actor, scan_id: int) -> None:
    """The file as uploaded, when the patient chose to keep it (read only on request)."""
    key = f"history_original_{scan_id}"
    if st.button("Get the original file I uploaded", key=f"{key}_prepare"):
        try:
            st.session_state[key] = load_original(db, actor, scan_id)
        except Exception as err:  # shown as one sentence
            show_error(err)
    kept = st.session_state.get(key)
    if kept is not None:
        st.download_button(
            f"Download {kept.filename}", kept.data, file_name=kept.filename, key=f"{key}_download"
        )


def _render_delete(db: Database, actor: Actor, scan: ScanSummary, name: str) -> None:
    with st.popover(f"Delete the scan of {name}"):
        st.write(
            f"Delete the scan of {name}, shown above? This removes its image, results and "
            "notes for good."
        )
        confirmed = st.checkbox(
            f"Yes, delete the scan of {name}", key=f"history_confirm_delete_{scan.id}"
        )
        if st.button("Delete permanently", key=f"history_delete_{scan.id}", disabled=not confirmed):
            try:
                delete_scan(db, actor, scan.id)
            except Exception as err:  # shown as one sentence
                show_error(err)
                return
            st.session_state[_DELETED_KEY] = f"The scan of {name} was deleted."
            st.session_state.pop(_CHOICE_KEY, None)
            st.rerun()


def _render_scan(db: Database, actor: Actor, opened: OpenedScan, birth_year: int | None) -> None:
    record = opened.record
    view = enhance_as_saved(record.pixels, record.enhancement)
    marks = [note.annotation for note in opened.notes if note.annotation]
    image = overlay_heatmap(view.pixels)
    caption = view.caption + (" Green marks: your clinicians' notes below." if marks else "")
    st.image(draw_annotations(image, marks) if marks else image, caption=caption)
    if not is_frontal(record.view):
        st.info(NOT_SCORED_SENTENCE if record.view is View.LATERAL else UNKNOWN_NOT_SCORED_SENTENCE)
    zone = browser_zone()
    for number, result in enumerate(reversed(record.results)):
        st.markdown(f"**Result from {format_local(result.created_at, zone)}**")
        if result.abstained:
            st.warning(result.abstain_reason or "The model was unsure about this image.")
            continue
        reading = reading_for(result, scan_date=record.scan_date, birth_year=birth_year)
        if reading is not None:
            render_reading(reading, key=f"history_result_{number}")
    _render_notes(db, actor, opened, zone)
    with st.expander("Details"):
        st.write(f"File name: {record.filename}")
        for result in reversed(record.results):
            st.write(
                f"Result from {format_local(result.created_at, zone)}: model "
                f"{result.model_name} {format_version(result.model_version)}"
            )


def _render_notes(db: Database, actor: Actor, opened: OpenedScan, zone: str | None) -> None:
    if not opened.notes:
        return
    st.subheader("Notes")
    labels = mark_labels([note.annotation for note in opened.notes])
    for note, mark in zip(opened.notes, labels, strict=True):
        where = f" ({mark} on the image)" if mark else ""
        new = " :orange-badge[New]" if note.new else ""
        st.markdown(
            f"**{note.author_username}**, {format_local(note.created_at, zone)}{where}{new}"
        )
        st.text(note.text)  # plain text: a note's links or images must never render
    unread = any(note.new for note in opened.notes)
    if unread and st.button("Mark these notes as read", key=f"history_read_{opened.record.id}"):
        try:
            mark_notes_read(db, actor, opened.record.id)
        except Exception as err:  # shown as one sentence
            show_error(err)
            return
        st.rerun()


actor = require_actor("patient")
db = get_database()
st.title("My scans")
show_disclaimer()
if (deleted := st.session_state.pop(_DELETED_KEY, None)) is not None:
    st.success(deleted)

scans = own_scans(db, actor)
if not scans:
    st.info("You have no stored scans yet.")
    st.stop()

birth_year = birth_year_of(db, actor, actor.user_id)
excluded = excluded_by_scan(scans, birth_year)
newest_first = list(reversed(scans))
names = scan_labels(newest_first)
try:
    unread = unread_note_counts(db, actor)
except Exception as err:  # shown as one sentence
    show_error(err)
    st.stop()
_render_unread(unread)
_render_list(scans, excluded, names, unread)

scan_id = st.selectbox(
    "Scan to show",
    list(names),
    format_func=lambda i: (
        f"{names[i]} - {plural(unread[i], 'new note')}" if i in unread else names[i]
    ),
    key=_CHOICE_KEY,
)
chosen = next(scan for scan in scans if scan.id == scan_id)
try:
    opened = open_scan(db, actor, scan_id)
except Exception as err:  # shown as one sentence
    show_error(err)
    st.stop()
_render_title(opened, names[scan_id])
_render_delete(db, actor, chosen, names[scan_id])
_render_scan(db, actor, opened, birth_year)
_render_original(db, actor, scan_id)
