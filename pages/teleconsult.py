"""Teleconsult page (clinicians): review a patient who shared their scans, and leave notes.

A session is opened for one patient at a time; its start and end are written to
the audit trail. Notes (text plus an optional point or box on the image) are
stored encrypted in the patient's record, where the patient sees them on their
report page.
"""

from __future__ import annotations

from datetime import datetime, timezone

import streamlit as st

from core.enhance import EnhanceSettings, enhance
from core.report import annotation_figure, make_annotation, overlay_heatmap
from core.timeline import sort_scans
from pages.compare import render_compare
from pages.timeline import current_classifier, render_timeline, scan_label
from pages.ui import get_database, require_actor, show_disclaimer, show_error
from storage import audit, records, sharing
from storage.db import Actor, Database
from storage.policy import AccessDenied
from storage.sharing import SharedPatient

#: Session-state key of the open teleconsult: {"patient_id", "username", "started_at"}.
_SESSION_KEY = "teleconsult_session"

_MARK_KINDS = ("No mark", "Point", "Box")


def _start(db: Database, actor: Actor, patient: SharedPatient) -> None:
    audit.record_session_start(db, actor, patient.patient_id)
    st.session_state[_SESSION_KEY] = {
        "patient_id": patient.patient_id,
        "username": patient.username,
        "started_at": datetime.now(timezone.utc),
    }


def _end(db: Database, actor: Actor) -> None:
    open_session = st.session_state.pop(_SESSION_KEY, None)
    if open_session is None:
        return
    minutes = (datetime.now(timezone.utc) - open_session["started_at"]).total_seconds() / 60
    audit.record_session_end(db, actor, open_session["patient_id"], minutes)


def _render_notes(db: Database, actor: Actor, scans: list[records.ScanSummary]) -> None:
    by_id = {scan.id: scan for scan in sort_scans(scans)}
    ids = list(by_id)
    scan_id = st.selectbox("Scan", ids, index=len(ids) - 1, format_func=lambda i: scan_label(by_id[i]), key="note_scan")
    try:
        record = records.load_scan(db, actor, scan_id)
        notes = records.list_notes(db, actor, scan_id)
    except (AccessDenied, records.RecordNotFound) as err:
        show_error(err)
        return
    height, width = record.pixels.shape
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
        except ValueError as err:
            st.error(str(err))
            return
    display = overlay_heatmap(enhance(record.pixels, EnhanceSettings()))
    marks = [note.annotation for note in notes if note.annotation]
    st.plotly_chart(annotation_figure(display, marks, pending), key="note_figure")
    text = st.text_area("Note (the patient will see it)", max_chars=records.MAX_NOTE_CHARS, key="note_text")
    if st.button("Add note", key="note_add"):
        try:
            records.add_note(db, actor, scan_id, text, pending)
        except (AccessDenied, records.RecordNotFound, ValueError) as err:
            show_error(err)
            return
        st.success("Note saved in the patient's record.")
        notes = records.list_notes(db, actor, scan_id)
    number = 0
    for note in notes:
        number += bool(note.annotation)
        mark = f" (mark {number})" if note.annotation else ""
        st.write(f"**{note.author_username}**, {note.created_at:%Y-%m-%d %H:%M}{mark}: {note.text}")


def _render_session(db: Database, actor: Actor, open_session: dict) -> None:
    started = open_session["started_at"].strftime("%H:%M UTC")
    top, button = st.columns([4, 1])
    top.subheader(f"Session with {open_session['username']} (started {started})")
    if button.button("End session", key="end_session"):
        _end(db, actor)
        st.rerun()
    classifier = current_classifier()
    timeline_tab, compare_tab, notes_tab = st.tabs(["Timeline", "Compare", "Notes"])
    with timeline_tab:
        scans = render_timeline(db, actor, open_session["patient_id"], classifier, can_edit=False, key="tc_timeline")
    if not scans:
        return
    with compare_tab:
        render_compare(db, actor, scans, classifier, key="tc_compare")
    with notes_tab:
        _render_notes(db, actor, scans)


def main() -> None:
    """Pick a patient who shared with you, open a session, review and annotate."""
    actor = require_actor("clinician")
    db = get_database()
    st.title("Teleconsultation")
    show_disclaimer()
    patients = {p.patient_id: p for p in sharing.shared_patients(db, actor)}
    open_session = st.session_state.get(_SESSION_KEY)
    if open_session is not None and open_session["patient_id"] not in patients:
        _end(db, actor)
        st.error("Your access to this patient's scans has ended, so the session was closed.")
        open_session = None
    if open_session is not None:
        _render_session(db, actor, open_session)
        return
    if not patients:
        st.info("No patient is sharing their scans with you right now.")
        return
    patient_id = st.selectbox(
        "Patient", list(patients),
        format_func=lambda i: (
            f"{patients[i].username} ({'emergency ' if patients[i].emergency else ''}access until "
            f"{patients[i].expires_at:%Y-%m-%d %H:%M} UTC)"
        ),
        key="tc_patient",
    )
    if st.button("Start session", key="start_session"):
        try:
            _start(db, actor, patients[patient_id])
        except AccessDenied as err:
            show_error(err)
            return
        st.rerun()


if __name__ == "__main__":
    main()
