"""Tests for core.age: birth years, ages at a scan's date, suggestions from a file."""

from __future__ import annotations

from datetime import date

import pytest

from core.age import InvalidBirthYear, age_at, check_birth_year, suggested_birth_year


def test_birth_year_must_be_a_living_patients() -> None:
    today = date(2026, 11, 22)
    assert check_birth_year(1961, today) == 1961
    for year in (1899, 2027):
        with pytest.raises(InvalidBirthYear):
            check_birth_year(year, today)


def test_age_at_a_scan_date() -> None:
    assert age_at(1961, date(2026, 1, 5)) == 65
    assert age_at(None, date(2026, 1, 5)) is None
    assert age_at(2030, date(2026, 1, 5)) == 0


def test_suggestion_prefers_the_birth_date_then_age_and_scan_date() -> None:
    assert suggested_birth_year(45, 1980, date(2026, 1, 5)) == 1980
    assert suggested_birth_year(45, None, date(2026, 1, 5)) == 1981
    assert suggested_birth_year(45, None, None) is None
    # Anonymised placeholders (1900-01-01 minus an age) suggest nothing.
    assert suggested_birth_year(None, 1850, None) is None
