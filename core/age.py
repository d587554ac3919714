"""The patient's age: a birth year as entered, and the age it gives at the date of a scan.

The account keeps only the birth year (less personal than a birth date, and enough to tell
a child from an adult); a DICOM file's Patient's Age (0010,1010) or Birth Date (0010,0030)
can suggest it.
"""

from __future__ import annotations

from datetime import date

from core.errors import UserError

#: No living patient was born earlier.
EARLIEST_BIRTH_YEAR = 1900


class InvalidBirthYear(UserError):
    """A birth year that cannot be a living patient's."""

    code = "invalid_birth_year"
    default_message = "Please enter the year you were born as four digits, for example 1984."


def check_birth_year(year: int, today: date) -> int:
    """The birth year, if it can be a living patient's.

    Args:
        year: The year as entered.
        today: Today's date (the latest possible birth year is this year).

    Returns:
        ``year`` unchanged.

    Raises:
        InvalidBirthYear: Before :data:`EARLIEST_BIRTH_YEAR` or after this year.
    """
    if not EARLIEST_BIRTH_YEAR <= year <= today.year:
        raise InvalidBirthYear(
            f"Please enter a birth year between {EARLIEST_BIRTH_YEAR} and {today.year}."
        )
    return year


def age_at(birth_year: int | None, on: date) -> int | None:
    """Age in whole years on a date, from the birth year alone (may be one year high).

    Args:
        birth_year: The patient's birth year, or None when unknown.
        on: The date (a scan's date).

    Returns:
        ``on.year - birth_year``, never negative; None when the birth year is unknown.
    """
    if birth_year is None:
        return None
    return max(on.year - birth_year, 0)


def suggested_birth_year(
    patient_age: int | None, birth_year: int | None, scan_date: date | None
) -> int | None:
    """The birth year a scan's file suggests.

    Args:
        patient_age: DICOM Patient's Age (0010,1010) in years, or None.
        birth_year: The year of DICOM Patient's Birth Date (0010,0030), or None.
        scan_date: The date the X-ray was taken, needed to turn an age into a year.

    Returns:
        The birth date's year when given; else the scan's year minus the age; None when
        neither is known, or when an anonymised placeholder puts it before
        :data:`EARLIEST_BIRTH_YEAR`.
    """
    year: int | None
    if birth_year is not None:
        year = birth_year
    elif patient_age is not None and scan_date is not None:
        year = scan_date.year - patient_age
    else:
        year = None
    if year is None or year < EARLIEST_BIRTH_YEAR:
        return None
    return year
