"""History: the logged-in patient's stored scans, to open or delete."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.enhance import enhance_as_saved
from core.findings import FINDING_LABELS, top_finding
from core.imaging import to_uint8
from core.timeline import red_flags
from models.populations import threshold_sentence
from pages.ui import get_database, require_actor, show_disclaimer, show_error
from pages.widgets import own_scans, scan_picker
from services.viewing import open_scan
from storage.actor import Actor
from storage.db import Database
from storage.scans import ScanSummary, delete_scan

_OPEN_KEY = "history_open_scan"


def _top_finding(scan: ScanSummary) -> str:
    result = scan.latest_result
    if result is None:
        return "not analysed"
    if result.abstained:
        return "model unsure"
    name = top_finding(result.probabilities, result.thresholds)
    if name is None:
        return "none above its level"
    return f"{FINDING_LABELS[name]} ({result.probabilities[name]:.0%})"


def _show_scan(db: Database, actor: Actor, scan_id: int) -> None:
    try:
        opened = open_scan(db, actor, scan_id)
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    record = opened.record
    view = enhance_as_saved(record.pixels, record.enhancement)
    st.image(to_uint8(view.pixels), caption=view.caption, clamp=True)
    for result in reversed(record.results):
        st.markdown(
            f"**Result from {result.created_at:%Y-%m-%d %H:%M} UTC**, model "
            f"{result.model_name} {result.model_version}"
        )
        if result.abstained:
            st.warning(result.abstain_reason or "The model was unsure about this image.")
        elif (whose := threshold_sentence(result.population)) is not None:
            st.caption(whose)
        st.dataframe(
            pd.DataFrame(
                [
                    {"finding": FINDING_LABELS.get(k, k), "probability": f"{v:.0%}"}
                    for k, v in result.probabilities.items()
                ]
            ),
            hide_index=True,
        )
    for note in opened.notes:
        st.caption(f"Note by {note.author_username}, {note.created_at:%Y-%m-%d %H:%M} UTC")
        st.text(note.text)  # plain text: a note's links or images must never render


actor = require_actor("patient")
db = get_database()
st.title("My scans")
show_disclaimer()

scans = own_scans(db, actor)

if not scans:
    st.info("You have no stored scans yet.")
    st.stop()

flags = red_flags(scans)
st.dataframe(
    pd.DataFrame(
        [
            {
                "scan date": s.scan_date,
                "file": s.filename,
                "top finding": _top_finding(s),
                "model version": s.latest_result.model_version if s.latest_result else "",
                "needs attention": " ".join(flags.get(s.id, [])),
            }
            for s in reversed(scans)
        ]
    ),
    hide_index=True,
)
if flags:
    st.warning(
        f"{len(flags)} scan(s) need attention: a finding is above its level or rose "
        "quickly. Discuss them with your clinician."
    )

scan_id = scan_picker("Scan", list(reversed(scans)), index=0, key="history_choice")
open_col, delete_col = st.columns(2)
if open_col.button("Open", key="history_open"):
    st.session_state[_OPEN_KEY] = scan_id

with delete_col.popover("Delete"):
    st.write("This removes the image, its results and notes for good.")
    confirmed = st.checkbox("Yes, delete this scan", key="history_confirm_delete")
    if st.button("Delete permanently", key="history_delete", disabled=not confirmed):
        try:
            delete_scan(db, actor, scan_id)
        except Exception as err:  # shown as one sentence
            show_error(err)
        else:
            st.session_state.pop(_OPEN_KEY, None)
            st.session_state.pop("history_confirm_delete", None)
            st.rerun()

if st.session_state.get(_OPEN_KEY) in {scan.id for scan in scans}:
    _show_scan(db, actor, st.session_state[_OPEN_KEY])
