"""Tests for services.validity: stored results read with the shipped model's validity table."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

from models.reports import METRICS_PATH
from services.records import record_of
from services.validity import patient_population, reading_for
from storage.results import ResultIn
from tests.core._records import make_result, make_scan, probs

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


def test_a_record_greys_by_the_patients_age_at_each_scan_with_the_shipped_table() -> None:
    # Born 2019: a child in 2024, and the same film's numbers read for an adult in 2040.
    result = replace(
        make_result(1, probs(0.02, bacterial=0.6, covid=0.71)), checkpoint_sha256=SHIPPED_SHA
    )
    scans = [
        make_scan(1, date(2024, 1, 5), results=[result]),
        make_scan(2, date(2040, 1, 5), results=[replace(result, id=2)]),
        make_scan(3, date(2040, 2, 5)),
    ]
    record = record_of(scans, 2019, None, patient_id=1)
    child, adult, unscored = record.readings
    assert (child.population, adult.population) == ("child", "adult")
    assert {item.finding for item in child.findings if item.greyed} == {"covid19"}
    assert {item.finding for item in adult.findings if item.greyed} == {
        "bacterial_pneumonia",
        "viral_pneumonia",
    }
    # Each greyed number is shown, never flagged: the child's COVID-19 71%, the adult's 60%.
    assert child.finding("covid19").value == 0.71 and not child.finding("covid19").flagged
    assert not adult.finding("bacterial_pneumonia").flagged
    assert unscored.findings == ()
