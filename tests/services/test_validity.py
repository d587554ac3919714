"""Tests for services.validity: stored results read with the shipped model's validity table."""

from __future__ import annotations

import json
from datetime import date

from models.reports import METRICS_PATH
from services.validity import excluded_by_scan, patient_population, reading_for
from storage.results import ResultIn

#: The checkpoint the shipped metrics.json measured (its validity table applies to it only).
SHIPPED_SHA = json.loads(METRICS_PATH.read_text())["model"]["sha256"]


def _result(population: str | None, sha: str = SHIPPED_SHA) -> ResultIn:
    return ResultIn(
        probabilities={
            "pneumonia": 0.02,
            "bacterial_pneumonia": 0.6,
            "viral_pneumonia": 0.01,
            "covid19": 0.71,
        },
        model_name="cxr",
        model_version="1.2.0",
        checkpoint_sha256=sha,
        thresholds={
            "pneumonia": 0.5,
            "bacterial_pneumonia": 0.5,
            "viral_pneumonia": 0.5,
            "covid19": 0.5,
        },
        population=population,
    )


def test_population_comes_from_the_file_else_the_birth_year_at_the_scan_date() -> None:
    assert patient_population("adult", 2020, date(2026, 1, 5)) == "adult"
    assert patient_population("unknown", 1961, date(2026, 1, 5)) == "adult"
    assert patient_population(None, 2015, date(2026, 1, 5)) == "child"
    assert patient_population("unknown", None, date(2026, 1, 5)) == "unknown"


def test_shipped_table_greys_the_subtypes_for_an_adult_and_covid19_for_a_child() -> None:
    adult = reading_for(_result("unknown"), scan_date=date(2026, 1, 5), birth_year=1961)
    assert adult is not None
    assert {"bacterial_pneumonia", "viral_pneumonia"} <= adult.excluded
    assert "covid19" not in adult.excluded
    child = reading_for(_result("child"), scan_date=date(2026, 1, 5), birth_year=None)
    assert child is not None and "covid19" in child.excluded


def test_results_of_an_unevaluated_checkpoint_hold_for_no_known_population() -> None:
    reading = reading_for(
        _result("adult", sha="00" * 32), scan_date=date(2026, 1, 5), birth_year=None
    )
    assert reading is not None and len(reading.excluded) == 4


def test_excluded_by_scan_lists_only_scans_with_greyed_findings() -> None:
    class Scan:
        def __init__(self, scan_id, result):
            self.id, self.scan_date, self.latest_result = scan_id, date(2026, 1, 5), result

    scans = [Scan(1, _result("adult")), Scan(2, None)]
    assert set(excluded_by_scan(scans, None)) == {1}
