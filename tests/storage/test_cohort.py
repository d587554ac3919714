"""Tests for storage.cohort: analysts get de-identified counts that single nobody out.

The attacks (every grouping the analyst page offers, differencing against totals) run on
SQLite and PostgreSQL through the ``database`` fixture.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlmodel import select

from core.eda import age_band
from core.findings import FINDINGS
from storage import cohort, schema
from storage.export import export_user
from storage.policy import AccessDenied
from storage.scans import add_results, open_scan_payload, save_scan
from tests.core.test_cohort import GROUPINGS, find_leaks
from tests.storage._factories import sample_pixels, sample_result, save_sample_scan


def test_counts_are_shown_for_ten_people_and_small_groups_left_out(database, make_user) -> None:
    analyst = make_user("ana", "analyst")
    for i in range(12):
        patient = make_user(f"patient{i}")
        scan_id = save_sample_scan(database, patient, scan_date=date(2024, 5, 1 + i))
        if i < 10:
            add_results(database, patient, [(scan_id, sample_result(0.1))])

    table = cohort.cohort_summary(database, analyst, ["finding"]).set_index("finding")

    # Twelve people have a flagged pneumonia result; ten also have one with nothing flagged.
    assert table.to_dict("index") == {
        "none": {"count": 10, "users": 10},
        "pneumonia": {"count": 12, "users": 12},
    }
    assert "user_id" not in table.reset_index().columns


def test_groups_by_month_and_age_band(database, make_user) -> None:
    analyst = make_user("ana", "analyst")
    for i in range(10):
        save_sample_scan(database, make_user(f"patient{i}"), scan_date=date(2024, 7, 2))
    table = cohort.cohort_summary(database, analyst, ["month", "age_band", "sex"])
    assert table.to_dict("records") == [
        {"month": "2024-07", "age_band": "40-59", "sex": "F", "count": 10, "users": 10}
    ]


#: (how many people, sex, age, scan date, pneumonia score): many women and one man.
OUTLIER_COHORT = [
    (14, "F", 52, date(2026, 1, 10), 0.8),
    (13, "F", 30, date(2026, 2, 10), 0.1),
    (11, "F", 65, date(2026, 2, 20), 0.8),
    (1, "M", 47, date(2026, 1, 12), 0.8),
]


def _store_outlier_cohort(database, make_user) -> pd.DataFrame:
    """Store :data:`OUTLIER_COHORT` and return the true rows the analyst must not see."""
    truth = []
    for group, (people, sex, age, scan_date, score) in enumerate(OUTLIER_COHORT):
        for i in range(people):
            patient = make_user(f"p{group}_{i}")
            save_scan(
                database,
                patient,
                pixels=sample_pixels(i),
                metadata={"patient_sex": sex, "patient_age": age},
                enhancement={},
                scan_date=scan_date,
                filename="scan.png",
                result=sample_result(score),
            )
            band = str(age_band(pd.Series([age])).iloc[0])
            finding = "pneumonia" if score >= 0.5 else "none"
            truth.append((patient.user_id, f"{scan_date:%Y-%m}", band, sex, finding))
    return pd.DataFrame(truth, columns=["user_id", "month", "age_band", "sex", "finding"])


@pytest.mark.slow
def test_single_outlier_survives_every_grouping_and_differencing(database, make_user) -> None:
    analyst = make_user("ana", "analyst")
    truth = _store_outlier_cohort(database, make_user)

    tables = {}
    for columns in GROUPINGS:
        tables[columns] = cohort.cohort_summary(database, analyst, list(columns))
        if len(columns) < 2:
            continue
        # The page lets the analyst pick columns in any order; the groups are the same.
        flipped = cohort.cohort_summary(database, analyst, list(reversed(columns)))
        flipped = flipped[tables[columns].columns].sort_values(list(columns))
        assert flipped.reset_index(drop=True).equals(tables[columns])

    # Solving every left-out group from all tables at once (totals included) finds nothing.
    assert find_leaks(truth, tables) == []
    for columns, table in tables.items():
        assert "sex" not in columns or "M" not in set(table["sex"]), columns
    assert tables[()].to_dict("records") == [{"count": 39, "users": 39}]

    sample = cohort.shift_sample(database, analyst)
    assert sample.sexes == {} and "sex" in sample.withheld
    # Ages only in bands; the man's 47 hides in the 40-59 band with 14 women.
    assert sample.age_bands == {"18-39": 13, "40-59": 15, "60-79": 11}
    assert not hasattr(sample, "ages")
    assert sample.finding_positive["pneumonia"] == 26 and sample.finding_total["pneumonia"] == 39


def _strip_intensity(database, scan_id: int) -> None:
    """Re-seal a scan's payload without intensity statistics, as scans stored before them."""
    with database.transaction() as session:
        scan = session.get(schema.Scan, scan_id)
        sealer = database.keyring.sealer(session, scan.owner_id)
        payload = open_scan_payload(sealer, scan)
        del payload["intensity_mean"], payload["intensity_std"]
        scan.payload = sealer.seal_json("scans", scan.id, scan.key_version, payload)
        session.add(scan)


def test_shift_sample_for_analysts_from_ten_people_without_ids(database, make_user) -> None:
    analyst = make_user("ana", "analyst")
    patients = [make_user(f"patient{i}") for i in range(10)]
    scan_ids = [save_sample_scan(database, p, seed=i) for i, p in enumerate(patients[:9])]
    assert cohort.shift_sample(database, analyst) is None, "nine people are too few"
    with pytest.raises(AccessDenied):
        cohort.shift_sample(database, patients[0])

    older = save_sample_scan(database, patients[9], seed=9)
    _strip_intensity(database, older)
    abstained = replace(sample_result(), abstained=True, abstain_reason="Not a chest radiograph.")
    add_results(database, patients[0], [(scan_ids[0], abstained)])
    sample = cohort.shift_sample(database, analyst)

    expected = [
        (
            float(sample_pixels(i).astype(np.float64).mean()),
            float(sample_pixels(i).astype(np.float64).std()),
        )
        for i in range(10)
    ]
    np.testing.assert_allclose(sorted(sample.intensity_mean), sorted(m for m, _ in expected))
    np.testing.assert_allclose(sorted(sample.intensity_std), sorted(s for _, s in expected))
    # The latest result of patient0's scan abstained: one person's scan assesses nothing, and
    # that count would follow from the scan total, so every finding is withheld.
    assert sample.withheld == frozenset(FINDINGS)
    assert sample.finding_total == {} and sample.finding_positive == {}
    assert sample.age_bands == {"40-59": 10} and sample.sexes == {"F": 10}
    # The older scan got its statistics sealed in, so its image is not decrypted again.
    assert "intensity_mean" in export_user(database, patients[9])["scans"][0]

    with database.transaction() as session:
        events = session.exec(
            select(schema.AuditEvent).where(schema.AuditEvent.action == "shift_sample")
        ).all()
    assert [(e.actor_id, e.patient_id, e.record_id) for e in events] == [
        (analyst.user_id, None, None)
    ] * 2
