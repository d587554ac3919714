"""Patient populations the model is calibrated and judged for.

The model learned pneumonia mostly from children aged 1-5 (Kermany) and from few adults
(NIH), so its calibration, thresholds and validity differ between the two. A scan whose
patient's age is unknown gets the values fitted on all validation films together.
"""

from __future__ import annotations

CHILD = "child"
ADULT = "adult"
UNKNOWN = "unknown"
#: Every population, in the order tables list them.
POPULATIONS: tuple[str, ...] = (CHILD, ADULT, UNKNOWN)
#: Plural nouns of the populations with an age group, for sentences.
PLURALS: dict[str, str] = {CHILD: "children", ADULT: "adults"}
#: Age in years from which a patient counts as an adult.
ADULT_AGE = 18


def population_for_age(age: int | None) -> str:
    """The population of a patient of the given age.

    Args:
        age: Age in years, or None when unknown.

    Returns:
        ``child`` below :data:`ADULT_AGE`, ``adult`` from it, ``unknown`` without an age.

    Raises:
        ValueError: The age is negative.
    """
    if age is None:
        return UNKNOWN
    if age < 0:
        raise ValueError(f"age must not be negative, got {age}")
    return CHILD if age < ADULT_AGE else ADULT


def threshold_sentence(population: str | None) -> str | None:
    """One sentence saying whose thresholds a stored result was judged with.

    Args:
        population: The result's population; None for results stored before populations.

    Returns:
        The sentence, or None when the result predates populations.
    """
    if population is None:
        return None
    if population in PLURALS:
        return (
            f"The file gives the patient's age, so the model's levels for {PLURALS[population]} "
            "were used."
        )
    return (
        "The patient's age is not known, so the model's levels for patients of unknown age "
        "were used."
    )
