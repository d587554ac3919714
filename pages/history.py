"""My scans: the logged-in patient's stored scans; the selected one is shown and can be deleted.

The scan shown, the scan named in the delete confirmation and the scan deleted are one and the
same: all three come from the picker's value in the same run, and the confirmation's widgets
are keyed by that scan's id, so a confirmation given for one scan never applies to another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from core.localtime import format_local
from core.scan_reading import STATUS_WORDS
from core.thumbnails import thumbnail_png
from core.words import plural
from pages.readings import render_reading
from pages.ui import (
    browser_zone,
    current_classifier,
    get_database,
    require_actor,
    show_disclaimer,
    show_error,
    viewing,
)
from pages.widgets import own_record
from services.dicom_sr import sr_zip
from services.fhir import fhir_bundle_json
from services.handles import Actor, Database
from services.history import delete_scan, load_original, mark_notes_read, unread_note_counts
from services.records import PatientRecord, ScanView, open_scan_view

if TYPE_CHECKING:
    from services.handles import Classifier

#: Session key of the sentence confirming the last deletion (shown once after the rerun).
_DELETED_KEY = "history_deleted"
_CHOICE_KEY = "history_choice"


def _render_list(record: PatientRecord, unread: dict[int, int]) -> None:
    # The same status, headline and flags as every other page (services.records).
    st.table(
        pd.DataFrame(
            [
                {
                    "Scan": reading.label,
                    "Status": STATUS_WORDS[reading.status],
                    "Reading": reading.headline,
                    "Needs attention": " ".join(reading.flags),
                    "New notes": plural(unread[reading.scan_id], "new note")
                    if reading.scan_id in unread
                    else "",
                }
                for reading in reversed(record.readings)
            ]
        ),
        hide_index=True,
    )
    if record.attention:
        st.warning(record.attention)


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


def _render_title(opened: ScanView) -> None:
    thumb, words = st.columns([1, 6])
    thumb.image(thumbnail_png(opened.record.pixels), width="content")
    words.subheader(opened.reading.label)
    words.caption(f"Saved on {format_local(opened.created_at, browser_zone())}.")


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


def _render_delete(db: Database, actor: Actor, scan_id: int, name: str) -> None:
    with st.popover(f"Delete the scan of {name}"):
        st.write(
            f"Delete the scan of {name}, shown above? This removes its image, results and "
            "notes for good."
        )
        confirmed = st.checkbox(
            f"Yes, delete the scan of {name}", key=f"history_confirm_delete_{scan_id}"
        )
        if st.button("Delete permanently", key=f"history_delete_{scan_id}", disabled=not confirmed):
            try:
                delete_scan(db, actor, scan_id)
            except Exception as err:  # shown as one sentence
                show_error(err)
                return
            st.session_state[_DELETED_KEY] = f"The scan of {name} was deleted."
            st.session_state.pop(_CHOICE_KEY, None)
            st.rerun()


def _render_scan(opened: ScanView) -> None:
    st.image(opened.image, caption=opened.caption)
    render_reading(opened.reading, key="history_reading")
    _render_notes(opened)
    with st.expander("Details"):
        st.write(f"File name: {opened.filename}")
        st.table(opened.details, hide_index=True)


def _render_notes(opened: ScanView) -> None:
    if not opened.notes:
        return
    zone = browser_zone()
    st.subheader("Notes")
    for note, mark in zip(opened.notes, opened.mark_labels, strict=True):
        where = f" ({mark} on the image)" if mark else ""
        new = " :orange-badge[New]" if note.new else ""
        st.markdown(
            f"**{note.author_username}**, {format_local(note.created_at, zone)}{where}{new}"
        )
        st.text(note.text)  # plain text: a note's links or images must never render
    unread = any(note.new for note in opened.notes)
    if unread and st.button("Mark these notes as read", key=f"history_read_{opened.record.id}"):
        try:
            mark_notes_read(get_database(), actor, opened.record.id)
        except Exception as err:  # shown as one sentence
            show_error(err)
            return
        st.rerun()


def _render_exports(db: Database, actor: Actor, classifier: Classifier | None) -> None:
    """The whole record's readings for a hospital's systems (built only when downloaded)."""
    st.subheader("For your hospital's record systems")
    st.caption(
        "Your scans' readings as a FHIR R4 bundle (for patient portals and record systems), "
        "and, for films that came as DICOM, as DICOM structured reports (for a PACS), each "
        "with a heatmap image of every finding at or above its level. They say what every page "
        "says: the same status, headline, numbers and flags."
    )
    left, right = st.columns(2)
    left.download_button(
        "Download FHIR bundle (JSON)",
        lambda: fhir_bundle_json(db, actor, classifier),
        file_name="chest-xray-readings.fhir.json",
        mime="application/fhir+json",
        on_click="ignore",
    )
    right.download_button(
        "Download DICOM structured reports (ZIP)",
        lambda: sr_zip(db, actor, classifier),
        file_name="chest-xray-readings-sr.zip",
        mime="application/zip",
        on_click="ignore",
    )


actor = require_actor("patient")
db = get_database()
st.title("My scans")
show_disclaimer()
if (deleted := st.session_state.pop(_DELETED_KEY, None)) is not None:
    st.success(deleted)

classifier = current_classifier("Stored results are still shown.")
record = own_record(actor, classifier)
if not record.scans:
    st.info("You have no stored scans yet.")
    st.stop()
names = record.labels
try:
    unread = unread_note_counts(db, actor)
except Exception as err:  # shown as one sentence
    show_error(err)
    st.stop()
_render_unread(unread)
_render_list(record, unread)

scan_id = st.selectbox(
    "Scan to show",
    list(reversed(names)),
    format_func=lambda i: (
        f"{names[i]} - {plural(unread[i], 'new note')}" if i in unread else names[i]
    ),
    key=_CHOICE_KEY,
)
try:
    opened = open_scan_view(db, actor, record, scan_id, viewing=viewing())
except Exception as err:  # shown as one sentence
    show_error(err)
    st.stop()
_render_title(opened)
_render_delete(db, actor, scan_id, names[scan_id])
_render_scan(opened)
_render_original(db, actor, scan_id)
_render_exports(db, actor, classifier)
