"""Tests for storage.cohort: analysts get suppressed, de-identified counts only."""

from __future__ import annotations

from datetime import date

from storage import cohort, records
from tests.storage._factories import sample_result, save_sample_scan


def test_counts_are_shown_for_ten_people_and_hidden_below(database, make_user) -> None:
    analyst = make_user("ana", "analyst")
    for i in range(10):
        patient = make_user(f"patient{i}")
        scan_id = save_sample_scan(database, patient, scan_date=date(2024, 5, 1 + i))
        if i < 3:
            records.add_result(database, patient, scan_id, sample_result(0.1))

    table = cohort.cohort_summary(database, analyst, ["finding"]).set_index("finding")

    # Ten people have a flagged pneumonia result; three also have one with nothing flagged.
    assert table.loc["pneumonia", "users"] == "10"
    assert table.loc["pneumonia", "count"] == "10"
    assert table.loc["none", "users"] == "<10"
    assert "user_id" not in table.reset_index().columns


def test_groups_by_month_and_age_band(database, make_user) -> None:
    analyst = make_user("ana", "analyst")
    for i in range(10):
        save_sample_scan(database, make_user(f"patient{i}"), scan_date=date(2024, 7, 2))
    table = cohort.cohort_summary(database, analyst, ["month", "age_band", "sex"])
    assert table.to_dict("records") == [
        {"month": "2024-07", "age_band": "40-59", "sex": "F", "count": "10", "users": "10"}
    ]
