"""The data-shift monitor (services.cohort) on stored scans, on both backends."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from core.cohort import MIN_USERS
from core.findings import FINDINGS
from core.shift import ShiftSample
from services.cohort import shift_report
from storage.policy import AccessDenied
from tests.storage._factories import save_sample_scan

#: A training side unlike the stored sample scans (bright, narrow intensities; other findings).
REFERENCE = ShiftSample(
    intensity_mean=np.linspace(0.70, 0.80, 200),
    intensity_std=np.linspace(0.05, 0.06, 200),
    finding_positive=dict.fromkeys(FINDINGS, 20),
    finding_total=dict.fromkeys(FINDINGS, 200),
    age_bands={"18-39": 70, "40-59": 70, "60-79": 60},
    sexes={"F": 100, "M": 100},
)


def test_too_few_people_give_no_comparison(database, make_user) -> None:
    analyst = make_user("ana", role="analyst")
    save_sample_scan(database, make_user("alice"))
    assert shift_report(database, analyst, REFERENCE) is None


def test_enough_people_give_one_verdict_per_quantity(database, make_user) -> None:
    analyst = make_user("ana", role="analyst")
    for index in range(MIN_USERS):
        patient = make_user(f"patient{index}")
        for day in range(1, 3):
            save_sample_scan(database, patient, scan_date=date(2025, 1, day), seed=index * 10 + day)
    table = shift_report(database, analyst, REFERENCE)
    assert table is not None and len(table)
    intensity = table[table["quantity"].str.contains("ntensity")]
    assert "shift" in set(intensity["verdict"]), "the sample scans are darker than the reference"


def test_only_analysts_run_the_monitor(database, make_user) -> None:
    with pytest.raises(AccessDenied):
        shift_report(database, make_user("alice"), REFERENCE)
