"""Tests of the one reading of a scan: each rule of ``core.scan_reading``, once."""

from __future__ import annotations

import re
from datetime import date

import pytest

from core.findings import FINDINGS
from core.reading import ADULT
from core.scan_reading import (
    AWAITING_RESCORE_SENTENCE,
    NONE_ABOVE_SENTENCE,
    NOT_YET_SCORED_SENTENCE,
    VIEW_UNCERTAIN_SENTENCE,
    ScanStatus,
    attention_summary,
    default_compare_pair,
    latest_scored_frontal,
    read_result_of,
    refused_reading,
)
from core.timeline import details_table, timeline_frame, timeline_table
from core.views import NOT_SCORED_SENTENCE, UNKNOWN_NOT_SCORED_SENTENCE, View
from storage.scans import ScanSummary
from tests.core._records import VALIDITY, make_result, make_scan, probs, read

_DOUBT = "This image does not look like a frontal film."


def _film(
    id: int,  # shadows the builtin on purpose: the record's field name
    day: int,
    pneumonia: float,
    view: View = View.PA,
    *,
    version: str = "1",
    doubt: str | None = None,
    **other: float,
) -> ScanSummary:
    result = make_result(id * 10, probs(pneumonia, **other), model_version=version, scan_id=id)
    return make_scan(id, date(2026, 1, day), results=[result], view=view, view_doubt=doubt)


def _by_id(scans: list[ScanSummary], **kwargs) -> dict:
    return {reading.scan_id: reading for reading in read(scans, **kwargs)}


# --------------------------------------------------------------------------- scored


def test_a_scored_frontal_film_shows_every_finding_and_its_flags() -> None:
    (reading,) = read([_film(1, 5, 0.62)])
    assert reading.status is ScanStatus.SCORED and reading.status_words == "Scored"
    assert reading.label == "5 Jan 2026, frontal (PA, standing)"
    assert [item.finding for item in reading.findings] == list(FINDINGS)
    assert reading.value_of("pneumonia") == pytest.approx(0.62)
    assert reading.has_numbers and reading.plotted and reading.comparable
    assert reading.flags == ("Pneumonia is at 62%, at or above its level of 50%.",)
    assert reading.needs_attention
    assert reading.reason is None
    assert (reading.model_name, reading.model_version, reading.result_id) == (
        "cxr-densenet",
        "1",
        10,
    )


def test_readings_come_oldest_first_by_date_then_id() -> None:
    readings = read([_film(3, 9, 0.1), _film(2, 1, 0.1), _film(1, 9, 0.1)])
    assert [r.scan_id for r in readings] == [2, 1, 3]


# --------------------------------------------------------------------------- side or unknown view


@pytest.mark.parametrize(
    ("view", "sentence"),
    [(View.LATERAL, NOT_SCORED_SENTENCE), (View.UNKNOWN, UNKNOWN_NOT_SCORED_SENTENCE)],
)
def test_a_side_or_unknown_view_has_no_number_anywhere(view: View, sentence: str) -> None:
    # Scored before its view was set: the old result stays only in the details.
    scans = [_film(1, 1, 0.10), _film(2, 2, 0.99, view), _film(3, 3, 0.12)]
    readings = read(scans)
    side = readings[1]
    assert side.status is ScanStatus.NOT_SCORED_VIEW
    assert side.findings == () and side.flags == () and not side.plotted
    assert side.headline == side.reason == sentence
    assert side.model_version is None and side.result_id is None
    assert not side.comparable
    assert 2 not in set(timeline_frame(readings, include_greyed=True)["scan_id"])
    row = timeline_table(readings).iloc[1]
    assert row["Pneumonia"] == "" and row["Needs attention"] == ""
    assert sentence in row["Note"]
    # The earlier result is kept in the details, and the side film breaks no rise baseline.
    assert "99%" in list(details_table(scans)["Pneumonia"])
    assert readings[2].flags == ()


def test_changing_the_view_back_to_frontal_scores_the_film_again() -> None:
    result = make_result(10, probs(0.7))
    lateral = make_scan(1, date(2026, 1, 1), results=[result], view=View.LATERAL)
    frontal = make_scan(1, date(2026, 1, 1), results=[result], view=View.AP)
    assert read([lateral])[0].status is ScanStatus.NOT_SCORED_VIEW
    assert read([frontal])[0].value_of("pneumonia") == pytest.approx(0.7)


# --------------------------------------------------------------------------- model unsure


def test_a_film_the_model_was_unsure_about_has_no_number_anywhere() -> None:
    unsure = make_result(
        20, probs(0.97, covid=0.97), abstained=True, abstain_reason="This looks like a negative."
    )
    scans = [
        _film(1, 1, 0.05),
        make_scan(2, date(2026, 1, 2), results=[unsure]),
        _film(3, 3, 0.45),
    ]
    readings = read(scans)
    reading = readings[1]
    assert reading.status is ScanStatus.UNSURE
    assert reading.findings == () and reading.flags == () and not reading.plotted
    assert reading.reason == "This looks like a negative."
    assert reading.headline == "No result is shown for this film: this looks like a negative."
    assert not re.search(r"\d+%", reading.headline)
    assert 2 not in set(timeline_frame(readings, include_greyed=True)["scan_id"])
    # Not in the table, not in the details: only the reason.
    table_row = timeline_table(readings).iloc[1]
    assert all(table_row[label] == "" for label in ("Pneumonia", "COVID-19-like pattern"))
    details = details_table(scans)
    unsure_row = details.iloc[1]
    assert unsure_row["Note"] == "This looks like a negative."
    assert "97%" not in " ".join(str(v) for v in details.to_numpy().ravel())
    # Never a baseline: the later film rises from the film before the unsure one.
    assert readings[2].flags[-1] == "Pneumonia rose from 5% to 45% since the PA film of 1 Jan 2026."
    assert attention_summary([reading]) is None


def test_an_unsure_result_without_a_reason_still_says_why() -> None:
    result = make_result(1, probs(0.9), abstained=True)
    (reading,) = read([make_scan(1, date(2026, 1, 1), results=[result])])
    assert reading.reason == "The model was unsure about this image."
    assert (
        reading.headline
        == "No result is shown for this film: the model was unsure about this image."
    )


# --------------------------------------------------------------------------- older model


def test_a_frontal_film_scored_only_by_an_older_model_awaits_rescoring() -> None:
    scans = [_film(1, 1, 0.8, version="1"), _film(2, 2, 0.2, version="2")]
    old, new = read(scans, current_version="2")
    assert old.status is ScanStatus.AWAITING_RESCORE
    assert old.findings == () and old.flags == () and not old.plotted
    assert old.headline == old.reason == AWAITING_RESCORE_SENTENCE
    assert new.status is ScanStatus.SCORED and new.model_version == "2"
    # The chart holds one model's numbers; the older one stays in the details.
    assert set(timeline_frame([old, new])["model_version"]) == {"2"}
    assert "80%" in list(details_table(scans)["Pneumonia"])
    (unscored,) = read([make_scan(3, date(2026, 1, 3))], current_version="2")
    assert unscored.status is ScanStatus.AWAITING_RESCORE
    assert unscored.headline == NOT_YET_SCORED_SENTENCE


def test_the_current_models_result_is_read_even_when_an_older_one_came_later() -> None:
    scan = make_scan(
        1,
        date(2026, 1, 1),
        results=[
            make_result(1, probs(0.3), model_version="2"),
            make_result(2, probs(0.9), model_version="1"),
        ],
    )
    (reading,) = read([scan], current_version="2")
    assert (reading.value_of("pneumonia"), reading.result_id) == (pytest.approx(0.3), 1)
    # Without a loaded model each scan's latest result is read.
    (latest,) = read([scan], current_version=None)
    assert (latest.value_of("pneumonia"), latest.model_version) == (pytest.approx(0.9), "1")


def test_no_rise_flag_across_model_versions() -> None:
    scans = [_film(1, 1, 0.05, version="1"), _film(2, 2, 0.45, version="2")]
    readings = read(scans, current_version=None)
    assert readings[1].flags == ()


# --------------------------------------------------------------------------- rises


def test_a_rise_names_the_finding_its_values_and_the_previous_film() -> None:
    readings = read([_film(1, 1, 0.10), _film(2, 2, 0.12), _film(3, 3, 0.41)])
    assert readings[2].flags == ("Pneumonia rose from 12% to 41% since the PA film of 2 Jan 2026.",)
    assert readings[0].flags == readings[1].flags == ()


def test_a_rise_equal_to_the_margin_is_no_flag_and_the_margin_is_configurable() -> None:
    scans = [_film(1, 1, 0.25), _film(2, 2, 0.40)]
    assert read(scans)[1].flags == ()
    assert read(scans, margin=0.10)[1].flags != ()
    for margin in (0, 1):
        with pytest.raises(ValueError):
            read(scans, margin=margin)


def test_rises_are_measured_within_one_projection_and_not_against_the_same_day() -> None:
    scans = [
        _film(1, 1, 0.10, View.PA),
        _film(2, 2, 0.45, View.AP),  # higher, but another projection
        _film(3, 3, 0.12, View.AP_SUPINE),
        _film(4, 4, 0.40, View.PA),
        _film(5, 4, 0.80, View.PA),  # the same day as 4: its baseline is still film 1
    ]
    by_id = _by_id(scans)
    assert by_id[2].flags == () and by_id[3].flags == ()
    assert by_id[4].flags == ("Pneumonia rose from 10% to 40% since the PA film of 1 Jan 2026.",)
    assert by_id[5].flags[-1] == "Pneumonia rose from 10% to 80% since the PA film of 1 Jan 2026."
    assert by_id[4].same_day == "Taken the same day as 1 other film: Frontal (PA, standing)."
    assert by_id[1].same_day is None


# --------------------------------------------------------------------------- view uncertain


def test_a_confirmed_doubtful_view_is_read_as_view_uncertain() -> None:
    scans = [
        _film(1, 1, 0.05),
        _film(2, 2, 0.60, doubt=_DOUBT),  # rose 55 points, but its view is doubted
        _film(3, 3, 0.30),
    ]
    first, doubtful, last = read(scans)
    assert doubtful.status is ScanStatus.VIEW_UNCERTAIN
    assert doubtful.status_words == "Scored, view uncertain"
    assert doubtful.headline.startswith("View uncertain. ")
    assert doubtful.reason == VIEW_UNCERTAIN_SENTENCE
    assert doubtful.value_of("pneumonia") == pytest.approx(0.60)
    # Its level is still said, but no rise.
    assert not any("rose" in flag for flag in doubtful.flags)
    assert doubtful.flags == ("Pneumonia is at 60%, at or above its level of 50%.",)
    assert not doubtful.comparable
    # No baseline for a later film: the last film rises from the first, not falls from 60%.
    assert last.flags == ("Pneumonia rose from 5% to 30% since the PA film of 1 Jan 2026.",)
    # Plotted apart, and never a default of Compare.
    frame = timeline_frame([first, doubtful, last])
    assert frame.loc[frame["scan_id"] == 2, "view_uncertain"].all()
    assert default_compare_pair([first, doubtful, last]) == (1, 3)
    assert default_compare_pair([first, doubtful]) is None
    assert VIEW_UNCERTAIN_SENTENCE in timeline_table([first, doubtful, last]).iloc[1]["Note"]


# --------------------------------------------------------------------------- greyed findings


def test_a_finding_learned_from_other_patients_is_greyed_never_flagged_nor_plotted() -> None:
    # Bacterial pneumonia was learned from children: an adult's 90% says little.
    scans = [_film(1, 1, 0.1, bacterial=0.05), _film(2, 2, 0.1, bacterial=0.90)]
    readings = read(scans, population=ADULT, validity=VALIDITY)
    item = readings[1].finding("bacterial_pneumonia")
    assert item is not None and item.greyed and item.valid is False
    assert not item.flagged and not item.plotted
    assert item.note is not None and "children aged 1-5" in item.note
    assert readings[1].flags == () and readings[1].headline == NONE_ABOVE_SENTENCE
    frame = timeline_frame(readings)
    assert "bacterial_pneumonia" not in set(frame["finding"])
    shown = timeline_frame(readings, include_greyed=True)
    assert shown.loc[shown["finding"] == "bacterial_pneumonia", "greyed"].all()
    assert timeline_table(readings).iloc[0]["Bacterial pneumonia"] == "90% (greyed)"


def test_an_unevaluated_model_holds_for_no_known_population() -> None:
    (reading,) = read([_film(1, 1, 0.9)], population=ADULT, validity={})
    assert all(item.greyed for item in reading.findings)
    assert reading.flags == () and not reading.plotted
    assert reading.has_numbers


# --------------------------------------------------------------------------- headline


def test_the_headline_names_every_flagged_finding_and_never_says_strongest() -> None:
    thresholds = {"pneumonia": 0.04, "bacterial_pneumonia": 0.5, "viral_pneumonia": 0.5}
    thresholds["covid19"] = 0.5
    # COVID-19 at 23% is shown higher than pneumonia at 6%, but only pneumonia is flagged.
    result = make_result(1, probs(0.06, covid=0.23), thresholds=thresholds)
    (reading,) = read([make_scan(1, date(2026, 1, 1), results=[result])])
    assert reading.headline == "Above its level: pneumonia 6% (level 4%)."
    both = make_result(2, probs(0.06, covid=0.63), thresholds=thresholds)
    (two,) = read([make_scan(2, date(2026, 1, 2), results=[both])])
    assert two.headline == (
        "Above their levels: COVID-19-like pattern 63% (level 50%) and pneumonia 6% (level 4%)."
    )
    (none,) = read([_film(3, 3, 0.2)])
    assert none.headline == NONE_ABOVE_SENTENCE
    for headline in (reading.headline, two.headline, none.headline):
        assert "strongest" not in headline.lower()


def test_a_score_at_its_level_is_flagged() -> None:
    result = make_result(1, probs(0.3), thresholds={"pneumonia": 0.3})
    (reading,) = read([make_scan(1, date(2026, 1, 1), results=[result])])
    assert reading.flags == ("Pneumonia is at 30%, at or above its level of 30%.",)


# --------------------------------------------------------------------------- attention summary


def test_attention_is_one_summary_for_the_record_not_one_box_per_film() -> None:
    nine = read([_film(i, i, 0.6) for i in range(1, 10)])
    summary = attention_summary(nine)
    assert isinstance(summary, str)
    assert summary.startswith("9 of 9 scored films need attention")
    assert "pneumonia on 9" in summary
    two = attention_summary(read([_film(1, 1, 0.6), _film(2, 2, 0.1)]))
    assert two is not None and two.startswith("1 of 2 scored films needs attention")
    # The summary does not grow with the number of films.
    assert summary.count(".") == two.count(".")
    assert attention_summary(read([_film(1, 1, 0.1)])) is None
    assert attention_summary([]) is None


# --------------------------------------------------------------------------- defaults


def test_the_report_opens_on_the_latest_film_with_numbers_skipping_laterals() -> None:
    scans = [_film(1, 1, 0.1), _film(2, 2, 0.2), _film(3, 3, 0.2, View.LATERAL)]
    chosen = latest_scored_frontal(read(scans))
    assert chosen is not None and chosen.scan_id == 2
    only_side = read([_film(4, 4, 0.2, View.LATERAL)])
    assert latest_scored_frontal(only_side) == only_side[0]
    assert latest_scored_frontal([]) is None


def test_compare_opens_on_the_latest_two_films_of_one_projection() -> None:
    scans = [
        _film(1, 1, 0.1, View.PA),
        _film(2, 1, 0.1, View.LATERAL),
        _film(3, 2, 0.1, View.AP),
        _film(4, 3, 0.1, View.PA),
        _film(5, 3, 0.1, View.LATERAL),
    ]
    assert default_compare_pair(read(scans)) == (1, 4)
    # An earlier day's film is preferred to a same-day repeat of the projection.
    assert default_compare_pair(read([*scans, _film(6, 3, 0.1, View.PA)])) == (1, 6)
    assert default_compare_pair(read([_film(1, 1, 0.1), _film(2, 1, 0.1)])) == (1, 2)
    assert default_compare_pair(read([_film(1, 1, 0.1), _film(2, 2, 0.1, View.AP)])) is None
    unknown = [_film(1, 1, 0.1, View.UNKNOWN), _film(2, 2, 0.1, View.UNKNOWN)]
    assert default_compare_pair(read(unknown)) is None
    versions = [_film(1, 1, 0.1, version="1"), _film(2, 2, 0.1, version="2")]
    assert default_compare_pair(read(versions, current_version=None)) is None


# --------------------------------------------------------------------------- before saving


def test_a_file_not_yet_saved_is_read_the_same_way() -> None:
    result = make_result(0, probs(0.7))
    reading = read_result_of(
        result,
        VALIDITY,
        ADULT,
        scan_id=0,
        scan_date=date(2026, 1, 1),
        view=View.PA,
        label="a.png",
        view_doubt=_DOUBT,
    )
    assert reading.status is ScanStatus.VIEW_UNCERTAIN and reading.result_id is None
    assert reading.value_of("pneumonia") == pytest.approx(0.7)
    refused = refused_reading(
        "This is a colour photograph.", scan_date=date(2026, 1, 1), view=View.PA, label="b.jpg"
    )
    assert refused.status is ScanStatus.REFUSED
    assert refused.findings == () and not refused.plotted and not refused.comparable
    assert refused.headline == refused.reason == "This is a colour photograph."
