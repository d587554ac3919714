"""Tests for storage.scans: saving, listing, loading, editing and deleting scans."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from storage.notes import add_note
from storage.policy import AccessDenied
from storage.scans import (
    RecordNotFound,
    add_results,
    delete_scan,
    list_scans,
    load_scan,
    save_scan,
    update_scan_date,
)
from tests.storage._factories import sample_pixels, sample_result, save_sample_scan


def test_saved_scan_reads_back_identically(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice, seed=3)

    loaded = load_scan(database, alice, scan_id)

    np.testing.assert_array_equal(loaded.pixels, sample_pixels(3))
    assert loaded.pixels.dtype == np.float32
    assert loaded.scan_date == date(2024, 3, 14)
    assert loaded.filename == "chest_front.png"
    assert loaded.metadata["patient_age"] == 52
    assert loaded.enhancement == {"clahe": True, "clip_limit": 0.01}
    assert len(loaded.results) == 1
    result = loaded.results[0]
    assert result.probabilities == sample_result().probabilities
    assert result.model_version == "1.0.0"
    assert result.thresholds["covid19"] == 0.5


def test_list_scans_sorted_by_scan_date_with_results_oldest_first(database, make_user) -> None:
    alice = make_user("alice")
    late = save_sample_scan(database, alice, scan_date=date(2024, 6, 1))
    early = save_sample_scan(database, alice, scan_date=date(2023, 1, 1), with_result=False)
    add_results(database, alice, [(late, sample_result(0.4, version="2.0.0"))])

    scans = list_scans(database, alice, alice.user_id)

    assert [s.id for s in scans] == [early, late]
    assert scans[0].results == []
    assert [r.model_version for r in scans[1].results] == ["1.0.0", "2.0.0"]
    assert scans[1].latest_result.probabilities["pneumonia"] == 0.4


def test_update_scan_date_changes_ordering(database, make_user) -> None:
    alice = make_user("alice")
    first = save_sample_scan(database, alice, scan_date=date(2024, 1, 1))
    second = save_sample_scan(database, alice, scan_date=date(2024, 2, 1))
    update_scan_date(database, alice, first, date(2024, 3, 1))
    assert [s.id for s in list_scans(database, alice, alice.user_id)] == [second, first]


def test_delete_scan_removes_rows_blob_and_notes(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    add_note(database, alice, scan_id, "follow up in two weeks")
    blobs_before = list(database.blobs.root.iterdir())
    assert len(blobs_before) == 1

    delete_scan(database, alice, scan_id)

    assert list_scans(database, alice, alice.user_id) == []
    assert list(database.blobs.root.iterdir()) == []
    with pytest.raises(RecordNotFound):
        load_scan(database, alice, scan_id)


def test_save_scan_refuses_non_image(database, make_user) -> None:
    alice = make_user("alice")
    with pytest.raises(ValueError):
        save_scan(
            database,
            alice,
            pixels=np.zeros(5),
            metadata={},
            enhancement={},
            scan_date=date(2024, 1, 1),
            filename="a.png",
        )


def test_other_patient_scan_is_denied_not_leaked(database, make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    scan_id = save_sample_scan(database, alice)
    with pytest.raises(AccessDenied):
        load_scan(database, bob, scan_id)
    assert list_scans(database, bob, bob.user_id) == []


def test_add_results_in_bulk_only_for_own_scans(database, make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    first = save_sample_scan(database, alice, with_result=False)
    second = save_sample_scan(database, alice, with_result=False, seed=1)
    ids = add_results(
        database,
        alice,
        [(first, sample_result(0.1)), (second, sample_result(0.2)), (first, sample_result(0.3))],
    )
    assert len(ids) == 3
    by_id = {s.id: s for s in list_scans(database, alice, alice.user_id)}
    assert [r.probabilities["pneumonia"] for r in by_id[first].results] == [0.1, 0.3]
    with pytest.raises(AccessDenied):
        add_results(database, bob, [(first, sample_result())])
