"""Patient flow through AppTest.

Three dated scans on the timeline, compare, report, share, revoke.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from core.findings import DISCLAIMER
from storage import sharing
from storage.notes import add_note
from storage.policy import AccessDenied
from storage.scans import list_scans
from tests.pages._flows import World, page, texts, use_untrained_model


def test_timeline_plots_three_scans_by_date_with_the_red_flag(world: World) -> None:
    at = page("timeline.py", world.alice).run()
    assert not at.exception
    text = texts(at)
    assert DISCLAIMER in text
    assert "analysis model is not available" in text, (
        "model missing: said so, stored results still shown"
    )
    figure = at.get("plotly_chart")[0]
    assert '"2026-02-01' in figure.proto.spec and '"2026-04-01' in figure.proto.spec
    table = at.table[0].value
    assert list(table["Scan date"]) == ["1 Apr 2026", "2 Mar 2026", "1 Feb 2026"]
    assert list(table["Status"]) == ["Scored"] * 3
    assert list(table["Pneumonia"]) == ["41%", "12%", "10%"]
    # The reason stands in the film's row; one summary sentence above the table.
    assert list(table["Needs attention"]) == [
        "Pneumonia rose from 12% to 41% since the PA film of 2 Mar 2026.",
        "",
        "",
    ]
    assert "1 of 3 scored films needs attention" in text


def test_correcting_a_scan_date_moves_the_scan_on_the_timeline(world: World) -> None:
    at = page("timeline.py", world.alice).run()
    at.selectbox(key="date_scan").set_value(world.scan_ids[0])
    at.date_input(key=f"date_value_{world.scan_ids[0]}").set_value(date(2026, 5, 1))
    at.button(key="date_save").click()
    at = at.run()
    assert not at.exception
    table = at.table[0].value
    assert list(table["Scan date"]) == ["1 May 2026", "1 Apr 2026", "2 Mar 2026"]
    summaries = list_scans(world.db, world.alice, world.alice.user_id)
    assert {s.scan_date.isoformat() for s in summaries} == {
        "2026-05-01",
        "2026-04-01",
        "2026-03-02",
    }


def test_timeline_of_unscored_scans_plots_nothing_and_says_why(world: World) -> None:
    at = page("timeline.py", world.carol).run()
    assert not at.exception
    assert not at.get("plotly_chart")
    shown = texts(at)
    assert "None of these scans has a number to plot yet." in shown
    assert "1 scan of unknown view." in shown
    assert list(at.table[0].value["Status"]) == ["Not scored (view)"]


def test_compare_defaults_to_the_last_two_scans_with_verdicts(world: World) -> None:
    at = page("compare.py", world.alice).run()
    assert not at.exception
    changes = at.dataframe[0].value
    pneumonia = changes[changes["Finding"] == "Pneumonia"].iloc[0]
    assert (pneumonia["Earlier"], pneumonia["Later"], pneumonia["Verdict"]) == (
        "12%",
        "41%",
        "higher",
    )
    assert "changes of 10% or less count as no meaningful change" in texts(at)
    assert len(at.get("image")) == 2, "the two scans side by side"


def test_report_page_shows_summary_questions_and_downloads(world: World) -> None:
    at = page("report.py", world.alice).run()
    assert not at.exception
    text = texts(at)
    assert "1 Apr 2026, frontal (PA, standing)" in text and "april.png" not in text
    assert "pneumonia score rose from 12% to 41% since 2 Mar 2026" in text
    assert text.count(DISCLAIMER) == 1, "the disclaimer once, not twice in a row"
    labels = [button.proto.label for button in at.get("download_button")]
    assert labels == ["Download PDF", "Download JSON"]


def test_share_then_revoke_through_the_sharing_page(world: World) -> None:
    at = page("sharing.py", world.alice).run()
    assert not at.exception
    at.text_input(key="grant_clinician").set_value("dr_bob")
    at.button[0].click()
    at = at.run()
    assert not at.exception
    assert "Shared with dr_bob." in texts(at)
    assert [p.username for p in sharing.shared_patients(world.db, world.dr_bob)] == ["alice"]
    assert len(list_scans(world.db, world.dr_bob, world.alice.user_id)) == 3

    grant_id = sharing.list_grants(world.db, world.alice)[0].id
    at.button(key=f"revoke_{grant_id}").click()
    at = at.run()
    assert not at.exception
    assert sharing.shared_patients(world.db, world.dr_bob) == []
    with pytest.raises(AccessDenied):
        list_scans(world.db, world.dr_bob, world.alice.user_id)


def test_rescore_with_a_new_model_keeps_old_results_and_heatmaps_work(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_untrained_model(tmp_path, monkeypatch, version="2")
    at = page("timeline.py", world.alice).run()
    assert not at.exception
    assert "3 frontal scans of yours have no result of the current model (v2)" in texts(at)
    main, details = at.table
    assert "Model" not in main.value.columns, "the model's identity is in the details"
    assert [m.rsplit(" ", 1)[1] for m in details.value["Model"]] == ["v1", "v1", "v1"]
    at.button(key="rescore").click()
    at = at.run()
    assert not at.exception
    assert "Re-scored 3 scans with model v2." in texts(at)
    assert sorted(m.rsplit(" ", 1)[1] for m in at.table[1].value["Model"]) == [
        "v1",
        "v1",
        "v1",
        "v2",
        "v2",
        "v2",
    ], "older results kept and labelled"
    summaries = list_scans(world.db, world.alice, world.alice.user_id)
    assert all([r.model_version for r in s.results] == ["1", "2"] for s in summaries)

    compare = page("compare.py", world.alice).run()
    compare.selectbox(key="compare_heat").set_value("pneumonia")
    compare = compare.run()
    assert not compare.exception
    assert "model v2" in texts(compare), "compared within the current model version"
    assert len(compare.get("image")) == 2

    report = page("report.py", world.alice).run()
    assert not report.exception
    assert "model cxr" in texts(report) and "v2." in texts(report), "in the Details expander"


def test_history_list_flags_the_rising_scan_with_its_reason(world: World) -> None:
    at = page("history.py", world.alice).run()
    assert not at.exception
    table = at.table[0].value
    flagged = dict(zip(table["Scan"], table["Needs attention"], strict=True))
    april, march = "1 Apr 2026, frontal (PA, standing)", "2 Mar 2026, frontal (PA, standing)"
    reason = "Pneumonia rose from 12% to 41% since the PA film of 2 Mar 2026."
    # The whole sentence in the film's row of a static table (wrapped, never cut).
    assert flagged[april] == reason and flagged[march] == ""
    assert "Model" not in table.columns and "File" not in table.columns
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("1 of 3 scored films needs attention") for w in warnings)
    # The newest film is open, with its flag.
    assert reason in warnings


HOSTILE_TEXT = (
    "See [my site](http://attacker.example/x) ![p](http://attacker.example/t.png) **now**"
)


def test_notes_and_emergency_reasons_are_shown_as_plain_text(world: World) -> None:
    """A clinician's Markdown (links, remote images) reaches the patient as literal text."""
    sharing.grant_access(world.db, world.alice, "dr_bob", hours=1)
    add_note(world.db, world.dr_bob, world.scan_ids[-1], HOSTILE_TEXT, None)
    sharing.request_emergency_access(world.db, world.dr_bob, "alice", HOSTILE_TEXT, minutes=30)

    history = page("history.py", world.alice).run()  # opens the newest scan
    report = page("report.py", world.alice).run()
    shared = page("sharing.py", world.alice).run()

    for at in (history, report, shared):
        assert not at.exception
        assert any(HOSTILE_TEXT in element.value for element in at.text)
        rendered = [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success]
        assert not [e for e in rendered if "attacker.example" in e.value]
