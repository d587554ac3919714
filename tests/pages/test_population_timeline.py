"""Timeline (AppTest): findings learned from other patients are off the chart and never flagged."""

from __future__ import annotations

from datetime import date

from core.views import View
from storage import accounts
from storage.actor import Actor
from storage.profile import set_birth_year
from tests.pages._flows import PASSWORD, page, save_small_scan, shipped_result, texts


def _scan(db, actor, when: date, bacterial: float, covid: float, seed: int) -> int:
    result = shipped_result(bacterial_pneumonia=bacterial, covid19=covid)
    return save_small_scan(db, actor, when, f"{when}.png", View.PA, result, seed)


def _alice_with_two_scans(db, birth_year: int | None) -> Actor:
    """A patient whose bacterial pneumonia (learned from children) rises by 60 points and
    COVID-19 (learned from adults) by 25, between two PA films four days apart."""
    alice = accounts.register(db, "alice", PASSWORD)
    if birth_year is not None:
        set_birth_year(db, alice, birth_year)
    _scan(db, alice, date(2026, 1, 5), bacterial=0.10, covid=0.05, seed=1)
    _scan(db, alice, date(2026, 1, 9), bacterial=0.70, covid=0.30, seed=2)
    return alice


def test_an_adults_timeline_hides_and_never_flags_the_childrens_findings(db) -> None:
    alice = _alice_with_two_scans(db, 1961)

    at = page("timeline.py", alice).run()
    assert not at.exception
    shown = texts(at)
    # COVID-19 (learned from adults) rose by 25 points: flagged. Bacterial pneumonia (learned
    # from children only) rose by 60 points and crossed its level: not flagged, not plotted.
    table = at.table[0].value
    assert list(table["Needs attention"]) == [
        "COVID-19-like pattern rose from 5% to 30% since the PA film of 5 Jan 2026.",
        "",
    ]
    assert list(table["Bacterial pneumonia"]) == ["70% (greyed)", "10% (greyed)"]
    assert "1 of 2 scored films needs attention" in shown
    assert "Bacterial pneumonia" not in " ".join(w.value for w in at.warning)
    assert "left off the chart and raise no flag" in shown
    spec = at.get("plotly_chart")[0].proto.spec
    assert "COVID-19-like pattern" in spec and "Bacterial pneumonia" not in spec

    at.toggle(key="timeline_show_greyed").set_value(True).run()
    assert not at.exception
    assert "Bacterial pneumonia (greyed)" in at.get("plotly_chart")[0].proto.spec
    assert "COVID-19-like pattern (greyed)" not in at.get("plotly_chart")[0].proto.spec
    assert "Bacterial pneumonia" not in " ".join(w.value for w in at.warning)


def test_without_an_age_nothing_is_hidden(db) -> None:
    alice = _alice_with_two_scans(db, None)
    at = page("timeline.py", alice).run()
    assert not at.exception
    assert "Bacterial pneumonia" in at.get("plotly_chart")[0].proto.spec
    assert "left off the chart" not in texts(at)


def test_compare_marks_the_findings_learned_from_other_patients(db) -> None:
    alice = _alice_with_two_scans(db, 1961)
    at = page("compare.py", alice).run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("Finding")
    assert table.loc["Bacterial pneumonia", "Learned from other patients"] == "yes"
    assert table.loc["COVID-19-like pattern", "Learned from other patients"] == ""
