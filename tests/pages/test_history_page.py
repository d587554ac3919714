"""Page tests (AppTest) for My scans: the scan shown is the scan named and deleted; greying."""

from __future__ import annotations

from datetime import date

import pytest

from core.views import View
from storage import accounts
from storage.profile import set_birth_year
from storage.scans import list_scans
from tests.pages._flows import PASSWORD, page, save_small_scan, shipped_result, texts


def _save(db, actor, when: date, name: str, view: View, seed: int) -> int:
    # Side views are not scored, as on the upload page.
    result = None if view is View.LATERAL else shipped_result(bacterial_pneumonia=0.9)
    return save_small_scan(db, actor, when, name, view, result, seed)


@pytest.fixture
def two_scans(db):
    alice = accounts.register(db, "alice", PASSWORD)
    older = _save(db, alice, date(2026, 1, 5), "older.png", View.LATERAL, 1)
    newer = _save(db, alice, date(2026, 1, 7), "newer.png", View.PA, 2)
    return alice, older, newer


def _headings(at) -> list[str]:
    return [s.value for s in at.subheader]


def test_the_selected_scan_is_shown_named_and_deleted_not_the_one_shown_before(
    db, two_scans
) -> None:
    alice, older, newer = two_scans
    at = page("history.py", alice).run()
    assert not at.exception
    # The newest scan is shown first, titled by its date and view.
    assert "7 Jan 2026, frontal (PA, standing)" in _headings(at)

    at.selectbox(key="history_choice").set_value(older).run()
    assert "5 Jan 2026, side (lateral)" in _headings(at)
    assert "7 Jan 2026, frontal (PA, standing)" not in _headings(at)
    shown = texts(at)
    assert "Delete the scan of 5 Jan 2026, side (lateral), shown above?" in shown
    assert "not scored" in shown

    assert at.button(key=f"history_delete_{older}").disabled
    at.checkbox(key=f"history_confirm_delete_{older}").check().run()
    at.button(key=f"history_delete_{older}").click().run()
    assert not at.exception
    assert [s.id for s in list_scans(db, alice, alice.user_id)] == [newer]
    assert "The scan of 5 Jan 2026, side (lateral) was deleted." in texts(at)
    assert "7 Jan 2026, frontal (PA, standing)" in _headings(at)


def test_a_confirmation_given_for_one_scan_does_not_delete_another(db, two_scans) -> None:
    alice, older, newer = two_scans
    at = page("history.py", alice).run()
    at.checkbox(key=f"history_confirm_delete_{newer}").check().run()
    at.selectbox(key="history_choice").set_value(older).run()
    assert at.button(key=f"history_delete_{older}").disabled
    assert [s.id for s in list_scans(db, alice, alice.user_id)] == [older, newer]


def test_an_adults_scan_greys_the_findings_learned_from_children(db, two_scans) -> None:
    alice, _, _ = two_scans
    set_birth_year(db, alice, 1961)
    at = page("history.py", alice).run()
    assert not at.exception
    shown = texts(at)
    assert (
        "Bacterial pneumonia was learned from children aged 1-5 only, so this number says "
        "little about an adult's film" in shown
    )
    listed = at.table[0].value
    # The greyed 90% is not named in the reading and raises no flag.
    assert listed["Status"].tolist()[0] == "Scored"
    assert "Bacterial" not in listed["Reading"].tolist()[0]
    assert "90%" not in listed["Reading"].tolist()[0]
    assert listed["Needs attention"].tolist()[0] == ""


def test_without_an_age_each_number_says_whom_it_was_learned_from(db, two_scans) -> None:
    alice, _, _ = two_scans
    at = page("history.py", alice).run()
    shown = texts(at)
    assert "Your age is not known, so each number says whom it was learned from" in shown
    assert "Bacterial pneumonia 90% - learned from children aged 1-5 only" in shown
