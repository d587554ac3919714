"""Tests for storage.cohort: analysts get suppressed, de-identified counts only."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pytest
from sqlmodel import select

from core.findings import FINDINGS
from storage import cohort, schema
from storage.export import export_user
from storage.policy import AccessDenied
from storage.scans import add_results, open_scan_payload
from tests.storage._factories import sample_pixels, sample_result, save_sample_scan


def test_counts_are_shown_for_ten_people_and_hidden_below(database, make_user) -> None:
    analyst = make_user("ana", "analyst")
    for i in range(10):
        patient = make_user(f"patient{i}")
        scan_id = save_sample_scan(database, patient, scan_date=date(2024, 5, 1 + i))
        if i < 3:
            add_results(database, patient, [(scan_id, sample_result(0.1))])

    table = cohort.cohort_summary(database, analyst, ["finding"]).set_index("finding")

    # Ten people have a flagged pneumonia result; three also have one with nothing flagged.
    assert table.loc["pneumonia", "users"] == "10"
    assert table.loc["pneumonia", "count"] == "10"
    assert table.loc["none", "users"] == "<10"
    assert "user_id" not in table.reset_index().columns


def test_groups_by_month_and_age_band(database, make_user) -> None:
    analyst = make_user("ana", "analyst")
    for i in range(10):
        save_sample_scan(database, make_user(f"patient{i}"), scan_date=date(2024, 7, 2))
    table = cohort.cohort_summary(database, analyst, ["month", "age_band", "sex"])
    assert table.to_dict("records") == [
        {"month": "2024-07", "age_band": "40-59", "sex": "F", "count": "10", "users": "10"}
    ]


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
    # The latest result of patient0's scan abstained, so that scan assesses nothing.
    assert sample.finding_total == dict.fromkeys(FINDINGS, 9)
    assert sample.finding_positive == {
        "pneumonia": 9,
        "bacterial_pneumonia": 0,
        "viral_pneumonia": 0,
        "covid19": 0,
    }
    assert sample.ages.tolist() == [52.0] * 10 and sample.sexes == {"F": 10}
    # The older scan got its statistics sealed in, so its image is not decrypted again.
    assert "intensity_mean" in export_user(database, patients[9])["scans"][0]

    with database.transaction() as session:
        events = session.exec(
            select(schema.AuditEvent).where(schema.AuditEvent.action == "shift_sample")
        ).all()
    assert [(e.actor_id, e.patient_id, e.record_id) for e in events] == [
        (analyst.user_id, None, None)
    ] * 2
