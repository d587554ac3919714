"""Importing a hospital CD or download on the upload page (not a page of its own).

The patient chooses a ZIP file (a CD copied into one, or a hospital's download); the app lists
its studies and series, ticks the chest radiographs, says what it leaves out, asks "is this
you?" when the headers may name someone else, and imports the chosen series in one step.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.labels import format_day, view_words
from core.words import plural
from pages.ui import current_classifier, get_database, show_error
from pages.widgets import import_progress, render_import_report
from services.handles import Actor
from services.media import MediaCheck, check_media, import_media

#: Session keys: the listed archive as (file id, MediaCheck), and the last import's report.
_CHECK_KEY = "media_check"
_REPORT_KEY = "media_report"


def _checked(upload: Any, actor: Actor) -> MediaCheck | None:
    stored = st.session_state.get(_CHECK_KEY)
    if stored is not None and stored[0] == upload.file_id:
        return stored[1]
    try:
        with st.spinner("Reading the disc's studies and series..."):
            check = check_media(get_database(), actor, upload)
    except Exception as err:  # shown as one sentence
        show_error(err)
        return None
    st.session_state[_CHECK_KEY] = (upload.file_id, check)
    return check


def render_media_import(actor: Actor) -> None:
    """The CD / download section of the upload page."""
    upload = st.file_uploader(
        "ZIP file of a CD or download",
        type=["zip"],
        help="Copy the CD's files into a ZIP file (with its DICOMDIR if there is one), or use "
        "the ZIP the hospital's portal gave you.",
        key="media_upload",
    )
    if upload is None:
        return
    check = _checked(upload, actor)
    if check is None:
        return
    listing = check.listing
    for sentence in listing.skipped:
        st.caption(sentence)
    if not listing.series:
        st.info("This archive holds no chest X-ray series the app can import.")
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
        }
    )
    edited = st.data_editor(
        frame,
        key=f"media_table_{upload.file_id}",
        hide_index=True,
        num_rows="fixed",
        disabled=[c for c in frame.columns if c != "import"],
        column_config={"import": st.column_config.CheckboxColumn("Import")},
    )
    chosen = [one for one, tick in zip(listing.series, edited["import"], strict=True) if tick]
    confirmed = True
    if check.needs_confirmation:
        st.warning(" ".join(check.doubts))
        named = f" The files name: {', '.join(check.names)}." if check.names else ""
        confirmed = st.checkbox(f"These films are mine.{named}", key=f"media_mine_{upload.file_id}")
    count = sum(one.image_count for one in chosen)
    if st.button(
        f"Import {plural(count, 'film')}" if count else "Import",
        type="primary",
        disabled=not chosen or not confirmed,
        key="media_import",
    ):
        bar = st.progress(0.0, text="Starting...")
        try:
            report = import_media(
                get_database(),
                actor,
                upload,
                chosen,
                current_classifier("The films are saved without a result.", as_error=True),
                identity_confirmed=confirmed,
                on_progress=import_progress(bar),
            )
        except Exception as err:  # shown as one sentence
            show_error(err)
            return
        st.session_state[_REPORT_KEY] = (upload.file_id, report)
    last = st.session_state.get(_REPORT_KEY)
    if last is not None and last[0] == upload.file_id:
        render_import_report(last[1])
