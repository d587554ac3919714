"""Reading stored results for the patient they belong to (population, validity, words).

The one place that decides, for a stored result, the patient's population at the scan's
date and which findings hold for it; pages, reports, the timeline and the export all call
:func:`reading_for`, or read scans through ``services.records`` (whose readings use
:func:`patient_population` and :func:`validity_of`). The verdicts are those of the model that
made the result: its checkpoint's validity table (``models/metrics.json``), looked up by the
SHA-256 stored with the result, so a result of an unevaluated model holds for no one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Protocol

from core.age import age_at
from core.reading import ResultReading, read_result
from models.populations import UNKNOWN, population_for_age
from models.reports import METRICS_PATH
from models.validity import FindingValidity, load_validity


class StoredResult(Protocol):
    """What is read of ``storage.results.ResultRecord`` (or ``ResultIn``)."""

    @property
    def probabilities(self) -> Mapping[str, float]: ...

    @property
    def thresholds(self) -> Mapping[str, float]: ...

    @property
    def population(self) -> str | None: ...

    @property
    def checkpoint_sha256(self) -> str: ...

    @property
    def abstained(self) -> bool: ...


@lru_cache(maxsize=8)
def validity_of(sha256: str) -> dict[tuple[str, str], FindingValidity]:
    """The validity table of the checkpoint with this SHA-256 (none for an unevaluated one).

    Public model facts, the same for every user: safe to keep per process.
    """
    return load_validity(METRICS_PATH, sha256)


def patient_population(result_population: str | None, birth_year: int | None, on: date) -> str:
    """The patient's population at a scan's date.

    Args:
        result_population: The population the result was scored for (child or adult when
            the file stated the age), or None / ``unknown``.
        birth_year: The account's birth year, or None.
        on: The scan's date.

    Returns:
        The file's own age group when the result has one, else the one the birth year gives
        at the scan's date, else ``unknown``.
    """
    if result_population not in (None, UNKNOWN):
        return str(result_population)
    return population_for_age(age_at(birth_year, on))


def reading_for(
    result: StoredResult | None, *, scan_date: date, birth_year: int | None
) -> ResultReading | None:
    """A stored result read for its patient.

    Args:
        result: The result, or None.
        scan_date: The date of its scan.
        birth_year: The patient's birth year, or None when not given.

    Returns:
        The reading; None without a result or when the model abstained.
    """
    if result is None or result.abstained:
        return None
    population = patient_population(result.population, birth_year, scan_date)
    return read_result(
        result.probabilities,
        result.thresholds,
        population,
        validity_of(result.checkpoint_sha256),
    )
