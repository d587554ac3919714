"""Re-scoring a patient's scans (services.rescore) with the shipped model, on both backends."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from core.imaging import decode_scan
from core.views import View
from services.imports import classify, save_decoded_scan
from services.rescore import rescore_scans
from storage.policy import AccessDenied
from storage.scans import list_scans
from storage.sharing import grant_access
from tests.storage._factories import sample_result

FILES = ("00000001_000.png", "16747_3_1.jpg")


def _seed(database, patient, samples_dir: Path) -> dict[int, str]:
    """The two real files stored with a result of an older model version; id -> file name."""
    ids = {}
    for day, name in enumerate(FILES, start=1):
        scan = decode_scan((samples_dir / name).read_bytes(), name)
        scan_id = save_decoded_scan(
            database,
            patient,
            scan,
            scan_date=date(2025, 1, day),
            filename=name,
            view=View.PA,
            result=sample_result(version="0.9.0"),
        )
        ids[scan_id] = name
    return ids


def test_scans_of_an_older_model_get_a_current_result_beside_the_old_one(
    database, make_user, classifier, samples_dir: Path
) -> None:
    alice = make_user("alice")
    names = _seed(database, alice, samples_dir)
    progress: list[tuple[int, int]] = []

    outcome = rescore_scans(
        database,
        alice,
        list_scans(database, alice, alice.user_id),
        classifier,
        on_progress=lambda done, total: progress.append((done, total)),
    )

    assert (outcome.rescored, outcome.model_version) == (2, classifier.info.version)
    assert progress == [(1, 2), (2, 2)]
    for scan in list_scans(database, alice, alice.user_id):
        old, new = scan.results
        assert (old.model_version, new.model_version) == ("0.9.0", classifier.info.version)
        name = names[scan.id]
        expected = classify(classifier, decode_scan((samples_dir / name).read_bytes(), name))
        assert new.probabilities == pytest.approx(expected.probabilities, abs=1e-6)
        assert new.abstained == expected.abstained


def test_scans_already_scored_by_the_current_model_are_left_alone(
    database, make_user, classifier, samples_dir: Path
) -> None:
    alice = make_user("alice")
    _seed(database, alice, samples_dir)
    rescore_scans(database, alice, list_scans(database, alice, alice.user_id), classifier)
    again = rescore_scans(database, alice, list_scans(database, alice, alice.user_id), classifier)
    assert again.rescored == 0
    assert all(len(scan.results) == 2 for scan in list_scans(database, alice, alice.user_id))


def test_a_clinician_cannot_rescore_a_patient(
    database, make_user, classifier, samples_dir: Path
) -> None:
    alice = make_user("alice")
    dr_bob = make_user("dr_bob", role="clinician")
    _seed(database, alice, samples_dir)
    grant_access(database, alice, "dr_bob", hours=1)
    scans = list_scans(database, dr_bob, alice.user_id)
    with pytest.raises(AccessDenied):
        rescore_scans(database, dr_bob, scans, classifier)
    assert all(len(scan.results) == 1 for scan in list_scans(database, alice, alice.user_id))
