"""Tests for core.reading: which numbers hold for the patient, greyed otherwise, in words."""

from __future__ import annotations

from dataclasses import dataclass

from core.reading import read_result


@dataclass(frozen=True)
class Verdict:
    valid: bool


#: As the shipped model's table: subtypes valid for children, COVID-19 for adults.
TABLE = {
    ("pneumonia", "child"): Verdict(True),
    ("pneumonia", "adult"): Verdict(False),
    ("bacterial_pneumonia", "child"): Verdict(True),
    ("bacterial_pneumonia", "adult"): Verdict(False),
    ("viral_pneumonia", "child"): Verdict(True),
    ("viral_pneumonia", "adult"): Verdict(False),
    ("covid19", "child"): Verdict(False),
    ("covid19", "adult"): Verdict(True),
}
PROBABILITIES = {
    "pneumonia": 0.001,
    "bacterial_pneumonia": 0.92,
    "viral_pneumonia": 0.002,
    "covid19": 0.71,
}
THRESHOLDS = dict.fromkeys(PROBABILITIES, 0.5)


def test_an_adult_film_greys_the_findings_learned_from_children() -> None:
    reading = read_result(PROBABILITIES, THRESHOLDS, "adult", TABLE)
    assert reading.excluded == {"pneumonia", "bacterial_pneumonia", "viral_pneumonia"}
    covid = reading.findings[-1]
    assert covid.valid is True and covid.note is None
    bacterial = reading.findings[1]
    assert bacterial.greyed and bacterial.flagged
    assert bacterial.note == (
        "Bacterial pneumonia was learned from children aged 1-5 only, so this number says "
        "little about an adult's film; it is shown greyed and raises no flag."
    )
    # The greyed 92% counts for nothing; the COVID-19-like pattern holds and is flagged.
    assert covid.flagged and not covid.greyed


def test_the_explanation_says_why_one_number_is_high_and_another_low() -> None:
    reading = read_result(PROBABILITIES, THRESHOLDS, "adult", TABLE)
    assert "COVID-19-like pattern 71% - learned from adults only" in reading.explanation
    # What the pattern cannot tell apart is said with it.
    assert "cannot tell COVID-19 from them" in reading.explanation
    assert (
        "Pneumonia 0% - learned from children aged 1-5 only, so it says little about an "
        "adult's film" in reading.explanation
    )


def test_a_child_film_greys_covid19() -> None:
    reading = read_result(PROBABILITIES, THRESHOLDS, "child", TABLE)
    assert reading.excluded == {"covid19"}
    bacterial = reading.findings[1]
    assert bacterial.flagged and not bacterial.greyed


def test_unknown_age_greys_nothing_but_names_whom_each_was_learned_from() -> None:
    reading = read_result(PROBABILITIES, THRESHOLDS, "unknown", TABLE)
    assert reading.excluded == frozenset()
    assert all(item.valid is None for item in reading.findings)
    assert reading.explanation.startswith("Your age is not known")
    assert "Viral pneumonia 0% - learned from children aged 1-5 only" in reading.explanation


def test_a_model_without_a_validity_table_holds_for_no_known_population() -> None:
    reading = read_result(PROBABILITIES, THRESHOLDS, "adult", {})
    assert len(reading.excluded) == 4
    assert "not checked on test films" in reading.findings[0].note
    assert all(item.greyed for item in reading.findings)
