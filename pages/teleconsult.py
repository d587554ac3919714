"""Teleconsult page (clinicians): review a patient who shared their scans, and leave notes.

A session is opened for one patient at a time; its start and end are written to the audit
trail. Notes (text plus an optional point or box on the image) are stored encrypted in the
patient's record, where the patient sees them on their report page.

With a hospital PACS connected (``PACS_URL``) a DICOM film's structured report can be sent to
it from the Notes tab, and, when the patient allowed it on their share, the "Hospital PACS"
tab searches the patient's studies by their hospital Patient ID and adds the chosen chest
series to the patient's record (``services.pacs``).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from core.annotations import mark_from_selection
from core.labels import format_day, view_words
from core.localtime import format_local
from core.overlay import annotation_figure
from core.words import plural
from pages.ui import (
    browser_zone,
    current_classifier,
    get_database,
    require_actor,
    show_disclaimer,
    show_error,
)
from pages.widgets import (
    import_progress,
    render_compare,
    render_import_report,
    render_timeline,
    scan_picker,
)
from services.handles import Actor, Database
from services.pacs import Pacs, PacsCheck, import_from_pacs, search_pacs, send_srs
from services.records import MarkingFilm, PatientRecord, film_for_marking, scan_notes
from services.teleconsult import (
    MAX_NOTE_CHARS,
    TeleconsultSession,
    add_note,
    end_teleconsult,
    shared_patients,
    start_teleconsult,
)

#: Session-state key of the open :class:`TeleconsultSession`.
_SESSION_KEY = "teleconsult_session"
#: Session-state keys: the PACS listing as (session id, PacsCheck), the last import's report.
_PACS_CHECK_KEY = "tc_pacs_check"
_PACS_REPORT_KEY = "tc_pacs_report"

#: How a drag on the image marks it: the chart's drag mode for each choice.
_DRAW_MODES = {"Point (click on the image)": "point", "Box (drag on the image)": "box"}

#: Window and level presets (centre, width of the grey band shown), applied to the display only.
_WINDOWS = {
    "Whole range": (0.5, 1.0),
    "Lungs (darker band)": (0.35, 0.5),
    "Mediastinum and bone (brighter band)": (0.7, 0.5),
}


def _pacs(db: Database) -> Pacs | None:
    """The hospital's PACS, when one is connected."""
    return Pacs.from_settings(db.settings) if db.settings.pacs_url else None


def _end(db: Database, actor: Actor) -> None:
    st.session_state.pop(_PACS_CHECK_KEY, None)
    st.session_state.pop(_PACS_REPORT_KEY, None)
    session = st.session_state.pop(_SESSION_KEY, None)
    if session is not None:
        end_teleconsult(db, actor, session)


def _apply_preset() -> None:
    level, width = _WINDOWS[st.session_state["note_window"]]
    st.session_state["note_level"] = level
    st.session_state["note_width"] = width


def _window_controls() -> tuple[float, float]:
    """Window and level sliders (with presets) for the displayed image only."""
    with st.expander("Window and level"):
        st.selectbox("Preset", list(_WINDOWS), key="note_window", on_change=_apply_preset)
        left, right = st.columns(2)
        level = left.slider("Level (centre)", 0.0, 1.0, 0.5, 0.01, key="note_level")
        width = right.slider("Window (width)", 0.05, 1.0, 1.0, 0.01, key="note_width")
    return level, width


def _film(
    db: Database, actor: Actor, record: PatientRecord, scan_id: int, viewing: str
) -> MarkingFilm:
    """The film as displayed with the chosen window, decoded once and kept in this user's
    session while the film and window stay: a mark drawn or a note added reruns this part
    with both unchanged."""
    window = _window_controls()
    key = (viewing, scan_id, record.scan(scan_id).created_at, window)
    kept = st.session_state.get("note_film")
    if kept is None or kept[0] != key:
        kept = (key, film_for_marking(db, actor, scan_id, window, viewing=viewing))
        st.session_state["note_film"] = kept
    film: MarkingFilm = kept[1]
    return film


@st.fragment
def _render_notes(db: Database, actor: Actor, record: PatientRecord, viewing: str) -> None:
    scan_id = scan_picker("Scan", record, key="note_scan")
    try:
        noted = scan_notes(db, actor, record, scan_id, viewing=viewing)
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    st.markdown(f"**{noted.reading.headline}**")
    mode = _DRAW_MODES[
        st.radio("Mark on the image", list(_DRAW_MODES), horizontal=True, key="note_mode")
    ]
    try:
        film = _film(db, actor, record, scan_id, viewing)
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    picture = film.picture
    # A new chart key after each saved note clears the selection; the mark itself is kept in
    # the session, because the chart may report an empty selection when it is redrawn.
    chart_key = f"note_figure_{scan_id}_{st.session_state.get('note_round', 0)}"
    pending_key = f"note_pending_{scan_id}"
    selection = st.session_state.get(chart_key, {}).get("selection") or {}
    if selection.get("box") or selection.get("points"):
        try:
            st.session_state[pending_key] = mark_from_selection(
                selection, (picture.width, picture.height)
            )
        except Exception as err:  # shown as one sentence
            show_error(err)
    pending = st.session_state.get(pending_key)
    # The marks are drawn by the chart itself, so they can be told apart from a new one.
    st.plotly_chart(
        annotation_figure(picture, noted.marks, pending, drawing=mode),
        key=chart_key,
        on_select="rerun",
        selection_mode=("points", "box"),
        config={"scrollZoom": True, "displaylogo": False},
    )
    st.caption(
        "Click on the image to place a point, or choose Box and drag across the image. "
        "Scroll to zoom and double-click to see the whole image again; in Point mode, drag to "
        "move the image."
    )
    if pending is None:
        st.caption("No mark yet: the note will be saved without one.")
    else:
        st.caption(f"New mark: {_describe(pending)} (image pixels).")
        st.button("Remove the mark", key="note_unmark", on_click=_clear_mark, args=(pending_key,))
    st.text_area("Note (the patient will see it)", max_chars=MAX_NOTE_CHARS, key="note_text")
    # Saved in the button's callback, before this part runs again: the run then reads the new
    # note, and the emptied text box is sent to the browser (a key merely dropped from the
    # session would leave the old text on screen, ready to be saved twice).
    st.button(
        "Add note", key="note_add", on_click=_add_note, args=(db, actor, scan_id, pending_key)
    )
    failed = st.session_state.pop("note_error", None)
    if failed is not None:
        show_error(failed)
    if st.session_state.pop("note_saved", False):
        st.success("Note saved in the patient's record.")
    pacs = _pacs(db)
    if pacs is not None and film.has_dicom_uid:
        _send_report(db, actor, pacs, record.patient_id, scan_id)
    zone = browser_zone()
    for note, mark in zip(noted.notes, noted.mark_labels, strict=True):
        where = f" ({mark})" if mark else ""
        when = format_local(note.created_at, zone)
        st.markdown(f"**{note.author_username}**, {when}{where}:")
        st.text(note.text)  # plain text: a note's links or images must never render


def _send_report(db: Database, actor: Actor, pacs: Pacs, patient_id: int, scan_id: int) -> None:
    """The button that stores this DICOM film's structured report in the PACS (STOW-RS)."""
    if st.button(f"Send the structured report to {pacs.name}", key=f"pacs_send_{scan_id}"):
        try:
            with st.spinner(f"Sending to {pacs.name}..."):
                sent = send_srs(
                    db,
                    actor,
                    pacs,
                    patient_id,
                    current_classifier("The stored result is sent."),
                    scan_ids=[scan_id],
                )
        except Exception as err:  # shown as one sentence
            show_error(err)
            return
        (st.success if sent.stored and not sent.failed else st.warning)(sent.summary)


def _render_pacs(db: Database, actor: Actor, session: TeleconsultSession, pacs: Pacs) -> None:
    """Search the patient's studies on the PACS and add the chosen chest series to the record."""
    st.caption(
        f"{session.username} allowed you to add films from {pacs.name} to their record. "
        "They see each film you add, and who added it."
    )
    with st.form("pacs_search"):
        typed = st.text_input("The patient's hospital Patient ID", key="pacs_patient_id")
        left, right = st.columns(2)
        since = left.date_input("Studies from", value=None, key="pacs_from")
        until = right.date_input("Studies until", value=None, key="pacs_to")
        searched = st.form_submit_button("Search")
    if searched:
        try:
            with st.spinner(f"Searching {pacs.name}..."):
                check = search_pacs(
                    db,
                    actor,
                    pacs,
                    typed,
                    since if isinstance(since, date) else None,
                    until if isinstance(until, date) else None,
                    patient=session.patient_id,
                )
        except Exception as err:  # shown as one sentence
            show_error(err)
            return
        st.session_state[_PACS_CHECK_KEY] = (session.id, check)
        st.session_state.pop(_PACS_REPORT_KEY, None)
    stored = st.session_state.get(_PACS_CHECK_KEY)
    if stored is None or stored[0] != session.id:
        return
    _render_pacs_listing(db, actor, session, pacs, stored[1])


def _render_pacs_listing(
    db: Database, actor: Actor, session: TeleconsultSession, pacs: Pacs, check: PacsCheck
) -> None:
    listing = check.listing
    for sentence in listing.skipped:
        st.caption(sentence)
    if not listing.series:
        st.info(
            f"{pacs.name[:1].upper()}{pacs.name[1:]} holds no chest X-ray series of this "
            "Patient ID in these dates."
        )
        return
    frame = pd.DataFrame(
        {
            "import": [one.preselected for one in listing.series],
            "date": [format_day(one.date) if one.date else "not given" for one in listing.series],
            "description": [one.description or "" for one in listing.series],
            "modality": [one.modality or "" for one in listing.series],
            "body part": [one.body_part or "" for one in listing.series],
            "view": [
                ", ".join(view_words(v) for v in one.views) or "not given" for one in listing.series
            ],
            "images": [one.image_count for one in listing.series],
            "new": [check.new_films(one) for one in listing.series],
        }
    )
    edited = st.data_editor(
        frame,
        key=f"pacs_table_{check.patient_id}",
        hide_index=True,
        num_rows="fixed",
        disabled=[c for c in frame.columns if c != "import"],
        column_config={"import": st.column_config.CheckboxColumn("Import")},
    )
    chosen = [one for one, tick in zip(listing.series, edited["import"], strict=True) if tick]
    confirmed = True
    if check.needs_confirmation:
        st.warning(" ".join(check.doubts))
        confirmed = st.checkbox(
            f"I checked: these films are {session.username}'s.", key="pacs_confirmed"
        )
    count = sum(check.new_films(one) for one in chosen)
    if st.button(
        f"Add {plural(count, 'film')} to {session.username}'s record" if count else "Import",
        type="primary",
        disabled=not chosen or not confirmed,
        key="pacs_import",
    ):
        bar = st.progress(0.0, text="Starting...")
        try:
            report = import_from_pacs(
                db,
                actor,
                pacs,
                check,
                chosen,
                current_classifier("The films are saved without a result.", as_error=True),
                identity_confirmed=confirmed,
                on_progress=import_progress(bar),
            )
        except Exception as err:  # shown as one sentence
            show_error(err)
            return
        st.session_state[_PACS_REPORT_KEY] = (session.id, report)
    last = st.session_state.get(_PACS_REPORT_KEY)
    if last is not None and last[0] == session.id:
        render_import_report(last[1])


def _add_note(db: Database, actor: Actor, scan_id: int, pending_key: str) -> None:
    try:
        add_note(
            db,
            actor,
            scan_id,
            st.session_state.get("note_text", ""),
            st.session_state.get(pending_key),
        )
    except Exception as err:  # shown as one sentence by the run that follows
        st.session_state["note_error"] = err
        return
    _clear_mark(pending_key)
    st.session_state["note_text"] = ""
    st.session_state["note_saved"] = True


def _clear_mark(pending_key: str) -> None:
    st.session_state.pop(pending_key, None)
    st.session_state["note_round"] = st.session_state.get("note_round", 0) + 1


def _describe(mark: dict[str, float]) -> str:
    if "x0" in mark:
        return (
            f"box from ({mark['x0']:.0f}, {mark['y0']:.0f}) to ({mark['x1']:.0f}, {mark['y1']:.0f})"
        )
    return f"point at ({mark['x']:.0f}, {mark['y']:.0f})"


def _render_session(
    db: Database, actor: Actor, session: TeleconsultSession, may_add_films: bool
) -> None:
    top, button = st.columns([4, 1])
    started = format_local(session.started_at, browser_zone(), with_date=False)
    top.subheader(f"Session with {session.username} (started {started})")
    if button.button("End session", key="end_session"):
        _end(db, actor)
        st.rerun()
    classifier = current_classifier("Stored results are still shown.")
    pacs = _pacs(db) if may_add_films else None
    names = ["Timeline", "Compare", "Notes"] + (["Hospital PACS"] if pacs is not None else [])
    timeline_tab, compare_tab, notes_tab, *pacs_tab = st.tabs(names)
    if pacs is not None:
        with pacs_tab[0]:
            _render_pacs(db, actor, session, pacs)
    with timeline_tab:
        record = render_timeline(
            actor,
            session.patient_id,
            classifier,
            can_edit=False,
            key="tc_timeline",
            seen_in=session.viewing,
        )
    if record is None or not record.scans:
        return
    with compare_tab:
        render_compare(actor, record, classifier, key="tc_compare", seen_in=session.viewing)
    with notes_tab:
        _render_notes(db, actor, record, session.viewing)


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
    _render_session(db, actor, open_session, patients[open_session.patient_id].may_add_films)
    st.stop()
if not patients:
    st.info("No patient is sharing their scans with you right now.")
    st.stop()
patient_id = st.selectbox(
    "Patient",
    list(patients),
    format_func=lambda i: (
        f"{patients[i].username} ({'emergency ' if patients[i].emergency else ''}access until "
        f"{format_local(patients[i].expires_at, browser_zone())})"
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
