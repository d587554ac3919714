"""Teleconsult page (clinicians): review a patient who shared their scans, and leave notes.

A session is opened for one patient at a time; its start and end are written to the audit
trail. Notes (text plus an optional point or box on the image) are stored encrypted in the
patient's record, where the patient sees them on their report page.
"""

from __future__ import annotations

import streamlit as st

from core.annotations import make_annotation, mark_labels
from core.enhance import EnhanceSettings, enhance
from core.overlay import annotation_figure, overlay_heatmap
from core.timeline import sort_scans
from pages.ui import current_classifier, get_database, require_actor, show_disclaimer, show_error
from pages.widgets import render_compare, render_timeline, scan_picker
from services.teleconsult import TeleconsultSession, end_teleconsult, start_teleconsult
from services.viewing import open_scan
from storage.actor import Actor
from storage.db import Database
from storage.notes import MAX_NOTE_CHARS, add_note, list_notes
from storage.scans import ScanSummary
from storage.sharing import shared_patients

#: Session-state key of the open :class:`TeleconsultSession`.
_SESSION_KEY = "teleconsult_session"

_MARK_KINDS = ("No mark", "Point", "Box")


def _end(db: Database, actor: Actor) -> None:
    session = st.session_state.pop(_SESSION_KEY, None)
    if session is not None:
        end_teleconsult(db, actor, session)


def _render_notes(db: Database, actor: Actor, scans: list[ScanSummary]) -> None:
    ordered = sort_scans(scans)
    scan_id = scan_picker("Scan", ordered, index=len(ordered) - 1, key="note_scan")
    try:
        opened = open_scan(db, actor, scan_id)
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    notes = opened.notes
    height, width = opened.record.pixels.shape
    kind = st.radio("Mark on the image", _MARK_KINDS, horizontal=True, key="note_kind")
    pending = None
    if kind != "No mark":
        columns = st.columns(4)
        x = columns[0].number_input("x (pixels from left)", 0, width, width // 2, key="note_x")
        y = columns[1].number_input("y (pixels from top)", 0, height, height // 2, key="note_y")
        w = h = 0
        if kind == "Box":
            w = columns[2].number_input("width", 1, width, max(1, width // 10), key="note_w")
            h = columns[3].number_input("height", 1, height, max(1, height // 10), key="note_h")
        try:
            pending = make_annotation(x, y, width, height, w, h)
        except Exception as err:  # shown as one sentence
            show_error(err)
            return
    display = overlay_heatmap(enhance(opened.record.pixels, EnhanceSettings()))
    marks = [note.annotation for note in notes if note.annotation]
    st.plotly_chart(annotation_figure(display, marks, pending), key="note_figure")
    text = st.text_area("Note (the patient will see it)", max_chars=MAX_NOTE_CHARS, key="note_text")
    if st.button("Add note", key="note_add"):
        try:
            add_note(db, actor, scan_id, text, pending)
        except Exception as err:  # shown as one sentence
            show_error(err)
            return
        st.success("Note saved in the patient's record.")
        notes = list_notes(db, actor, scan_id)
    for note, mark in zip(notes, mark_labels([n.annotation for n in notes]), strict=True):
        where = f" ({mark})" if mark else ""
        st.markdown(f"**{note.author_username}**, {note.created_at:%Y-%m-%d %H:%M}{where}:")
        st.text(note.text)  # plain text: a note's links or images must never render


def _render_session(db: Database, actor: Actor, session: TeleconsultSession) -> None:
    top, button = st.columns([4, 1])
    top.subheader(f"Session with {session.username} (started {session.started_at:%H:%M} UTC)")
    if button.button("End session", key="end_session"):
        _end(db, actor)
        st.rerun()
    classifier = current_classifier("Stored results are still shown.")
    timeline_tab, compare_tab, notes_tab = st.tabs(["Timeline", "Compare", "Notes"])
    with timeline_tab:
        scans = render_timeline(
            db, actor, session.patient_id, classifier, can_edit=False, key="tc_timeline"
        )
    if not scans:
        return
    with compare_tab:
        render_compare(db, actor, scans, classifier, key="tc_compare")
    with notes_tab:
        _render_notes(db, actor, scans)


actor = require_actor("clinician")
db = get_database()
st.title("Teleconsultation")
show_disclaimer()
patients = {p.patient_id: p for p in shared_patients(db, actor)}
open_session: TeleconsultSession | None = st.session_state.get(_SESSION_KEY)
if open_session is not None and open_session.patient_id not in patients:
    _end(db, actor)
    st.error("Your access to this patient's scans has ended, so the session was closed.")
    open_session = None
if open_session is not None:
    _render_session(db, actor, open_session)
    st.stop()
if not patients:
    st.info("No patient is sharing their scans with you right now.")
    st.stop()
patient_id = st.selectbox(
    "Patient",
    list(patients),
    format_func=lambda i: (
        f"{patients[i].username} ({'emergency ' if patients[i].emergency else ''}access until "
        f"{patients[i].expires_at:%Y-%m-%d %H:%M} UTC)"
    ),
    key="tc_patient",
)
if st.button("Start session", key="start_session"):
    try:
        st.session_state[_SESSION_KEY] = start_teleconsult(db, actor, patients[patient_id])
    except Exception as err:  # shown as one sentence
        show_error(err)
        st.stop()
    st.rerun()
