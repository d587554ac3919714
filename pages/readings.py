"""Showing a result as it holds for its patient (shared by Upload and My scans; not a page).

Which findings hold, the greying and the sentences come from ``services.validity`` /
``core.reading``; this module only lays them out.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.reading import ResultReading
from pages.ui import show_error
from storage.actor import Actor
from storage.db import Database
from storage.profile import get_birth_year

#: Text colour of a greyed row (a finding outside the patient's population).
_GREY = "color: #9e9e9e"


def birth_year_of(db: Database, actor: Actor, patient_id: int) -> int | None:
    """The patient's birth year; on failure one sentence is shown and None returned."""
    try:
        return get_birth_year(db, actor, patient_id)
    except Exception as err:  # shown as one sentence
        show_error(err)
        return None


def render_reading(reading: ResultReading, *, key: str) -> None:
    """The headline, why the numbers differ, and one row per finding (greyed outside).

    Args:
        reading: The result read for its patient (``services.validity.reading_for``).
        key: Widget key of the table, unique on the page.
    """
    st.markdown(f"**{reading.headline}**")
    st.write(reading.explanation)
    frame = pd.DataFrame(
        [
            {
                "finding": item.label,
                "probability": f"{item.probability:.0%}",
                "level": f"{item.threshold:.0%}",
                "learned from": item.learned_from or "not checked on test films",
                "for this patient": _standing(item.valid),
            }
            for item in reading.findings
        ]
    )
    greyed = [item.greyed for item in reading.findings]
    st.dataframe(
        frame.style.apply(
            lambda row: [_GREY if greyed[row.name] else ""] * len(row), axis="columns"
        ),
        hide_index=True,
        key=key,
    )
    for item in reading.findings:
        if item.note is not None:
            st.caption(item.note)


def _standing(valid: bool | None) -> str:
    if valid is None:
        return "age not known"
    return "holds" if valid else "says little (greyed)"
