"""Patients are children below 18, adults from 18, unknown without an age."""

import pytest

from models.populations import (
    ADULT,
    ADULT_AGE,
    CHILD,
    UNKNOWN,
    population_for_age,
    threshold_sentence,
)


@pytest.mark.parametrize(
    ("age", "population"),
    [(None, UNKNOWN), (0, CHILD), (ADULT_AGE - 1, CHILD), (ADULT_AGE, ADULT), (85, ADULT)],
)
def test_population_for_age(age, population):
    assert population_for_age(age) == population


def test_negative_age_is_refused():
    with pytest.raises(ValueError, match="negative"):
        population_for_age(-1)


def test_threshold_sentence_names_whose_levels_were_used() -> None:
    assert "for adults" in threshold_sentence(ADULT)
    assert "for children" in threshold_sentence(CHILD)
    assert "not known" in threshold_sentence(UNKNOWN)
    assert threshold_sentence(None) is None
