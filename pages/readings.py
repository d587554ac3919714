"""A result as it holds for its patient, and the birth year it depends on (not a page).

Which findings hold, the greying, flags and sentences come from the scan's reading
(``core.scan_reading``, built by ``services.records``); this module only lays them out.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from core.age import EARLIEST_BIRTH_YEAR
from core.scan_reading import ScanReading, ScanStatus
from pages.ui import show_error, viewing
from services.handles import Actor, Database
from services.profile import get_birth_year, set_birth_year

#: Text colour of a greyed row (a finding outside the patient's population).
_GREY = "color: #9e9e9e"


def birth_year_of(db: Database, actor: Actor, patient_id: int) -> int | None:
    """The patient's birth year (audited once per page visit); on failure one sentence is
    shown and None returned."""
    try:
        return get_birth_year(db, actor, patient_id, viewing=viewing())
    except Exception as err:  # shown as one sentence
        show_error(err)
        return None


def render_reading(reading: ScanReading, *, key: str) -> None:
    """A scan's reading: status and headline, then one row per finding (greyed outside).

    Args:
        reading: The scan's reading (``services.records`` / ``core.scan_reading``).
        key: Widget key of the table, unique on the page.
    """
    if not reading.has_numbers:
        box = st.warning if reading.status is ScanStatus.UNSURE else st.info
        box(reading.headline)
        return
    st.markdown(f"**{reading.headline}**")
    if reading.status is ScanStatus.VIEW_UNCERTAIN and reading.reason:
        st.warning(reading.reason)
    for flag in reading.flags:
        st.warning(flag)
    if reading.explanation:
        st.write(reading.explanation)
    frame = pd.DataFrame(
        [
            {
                "finding": item.label,
                "probability": f"{item.value:.0%}",
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


def birth_year_input(key: str, value: int | None = None, help: str | None = None) -> int | None:
    """The optional birth-year field, inside the caller's form.

    Args:
        key: Streamlit widget key.
        value: Year shown at first, or None for an empty field.
        help: Tooltip text, if any.

    Returns:
        The year entered, or None when the field is empty.
    """
    year = st.number_input(
        "Year you were born (optional)",
        min_value=EARLIEST_BIRTH_YEAR,
        max_value=date.today().year,
        value=value,
        step=1,
        placeholder="for example 1984",
        help=help,
        key=key,
    )
    return None if year is None else int(year)


def render_birth_year_form(db: Database, actor: Actor) -> None:
    """The patient's birth year: shown, changed or removed (Account page)."""
    st.subheader("About you")
    st.caption(
        "Your birth year tells the app whether to read your X-rays as a child's or an "
        "adult's: some findings were learned from children aged 1-5 only, others from adults "
        "only. It is stored encrypted, like your scans."
    )
    current = birth_year_of(db, actor, actor.user_id)
    with st.form("birth_year_form"):
        year = birth_year_input("birth_year", current)
        save, forget = st.columns(2)
        saved = save.form_submit_button("Save birth year")
        cleared = forget.form_submit_button("Remove birth year")
    if not (saved or cleared):
        return
    try:
        set_birth_year(db, actor, None if cleared else year)
    except Exception as err:  # shown as one sentence
        show_error(err)
        return
    st.success(
        "Your birth year was removed."
        if cleared or year is None
        else f"Your birth year {year} was saved."
    )
