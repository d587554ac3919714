"""Tests for storage.records: saving, listing, loading, editing and deleting scans."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from storage import records
from storage.policy import AccessDenied
from tests.storage._factories import sample_pixels, sample_result, save_sample_scan


def test_saved_scan_reads_back_identically(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice, seed=3)

    loaded = records.load_scan(database, alice, scan_id)

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
    assert result.top_finding() == ("pneumonia", 0.8)


def test_list_scans_sorted_by_scan_date_with_results_oldest_first(database, make_user) -> None:
    alice = make_user("alice")
    late = save_sample_scan(database, alice, scan_date=date(2024, 6, 1))
    early = save_sample_scan(database, alice, scan_date=date(2023, 1, 1), with_result=False)
    records.add_result(database, alice, late, sample_result(0.4, version="2.0.0"))

    scans = records.list_scans(database, alice, alice.user_id)

    assert [s.id for s in scans] == [early, late]
    assert scans[0].results == []
    assert [r.model_version for r in scans[1].results] == ["1.0.0", "2.0.0"]
    assert scans[1].latest_result.probabilities["pneumonia"] == 0.4


def test_update_scan_date_changes_ordering(database, make_user) -> None:
    alice = make_user("alice")
    first = save_sample_scan(database, alice, scan_date=date(2024, 1, 1))
    second = save_sample_scan(database, alice, scan_date=date(2024, 2, 1))
    records.update_scan_date(database, alice, first, date(2024, 3, 1))
    assert [s.id for s in records.list_scans(database, alice, alice.user_id)] == [second, first]


def test_delete_scan_removes_rows_blob_and_notes(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    records.add_note(database, alice, scan_id, "follow up in two weeks")
    blobs_before = list(database.blobs.root.iterdir())
    assert len(blobs_before) == 1

    records.delete_scan(database, alice, scan_id)

    assert records.list_scans(database, alice, alice.user_id) == []
    assert list(database.blobs.root.iterdir()) == []
    with pytest.raises(records.RecordNotFound):
        records.load_scan(database, alice, scan_id)


def test_notes_with_point_and_box_annotations(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    records.add_note(database, alice, scan_id, "a spot", {"x": 10, "y": 12})
    records.add_note(database, alice, scan_id, "an area", {"x0": 1, "y0": 2, "x1": 8, "y1": 9})
    records.add_note(database, alice, scan_id, "just text")

    notes = records.list_notes(database, alice, scan_id)

    assert [n.text for n in notes] == ["a spot", "an area", "just text"]
    assert notes[0].annotation == {"x": 10.0, "y": 12.0}
    assert notes[1].annotation == {"x0": 1.0, "y0": 2.0, "x1": 8.0, "y1": 9.0}
    assert notes[2].annotation is None
    assert notes[0].author_username == "alice"


@pytest.mark.parametrize(
    "text, annotation",
    [("", None), ("   ", None), ("x" * 5001, None), ("ok", {"x": 1}),
     ("ok", {"x": -1, "y": 2}), ("ok", {"x0": 5, "y0": 5, "x1": 1, "y1": 9})],
)
def test_invalid_notes_are_refused(database, make_user, text, annotation) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    with pytest.raises(ValueError):
        records.add_note(database, alice, scan_id, text, annotation)


def test_save_scan_refuses_non_image(database, make_user) -> None:
    alice = make_user("alice")
    with pytest.raises(ValueError):
        records.save_scan(database, alice, pixels=np.zeros(5), metadata={}, enhancement={},
                          scan_date=date(2024, 1, 1), filename="a.png")


def test_export_contains_decrypted_records(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    records.add_note(database, alice, scan_id, "my own note")

    exported = records.export_user(database, alice)

    assert exported["user"]["username"] == "alice"
    [scan] = exported["scans"]
    assert scan["scan_date"] == "2024-03-14"
    assert scan["filename"] == "chest_front.png"
    assert scan["results"][0]["probabilities"]["pneumonia"] == 0.8
    assert scan["notes"][0]["text"] == "my own note"


def test_other_patient_scan_is_denied_not_leaked(database, make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    scan_id = save_sample_scan(database, alice)
    with pytest.raises(AccessDenied):
        records.load_scan(database, bob, scan_id)
    assert records.list_scans(database, bob, bob.user_id) == []


def test_add_results_in_bulk_only_for_own_scans(database, make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    first = save_sample_scan(database, alice, with_result=False)
    second = save_sample_scan(database, alice, with_result=False, seed=1)
    ids = records.add_results(database, alice, [(first, sample_result(0.1)),
                                                (second, sample_result(0.2)),
                                                (first, sample_result(0.3))])
    assert len(ids) == 3
    by_id = {s.id: s for s in records.list_scans(database, alice, alice.user_id)}
    assert [r.probabilities["pneumonia"] for r in by_id[first].results] == [0.1, 0.3]
    with pytest.raises(AccessDenied):
        records.add_results(database, bob, [(first, sample_result())])


def test_result_from_a_model_prediction_is_stored_as_predicted(database, make_user) -> None:
    from models.inference import ModelInfo, Prediction

    alice = make_user("alice")
    prediction = Prediction(
        probabilities={"pneumonia": np.float32(0.75), "covid19": np.float64(0.125)},
        abstained=False, abstain_reason=None, ood_score=np.float32(3.5),
    )
    info = ModelInfo(name="cxr-net", version="2.1.0", sha256="cd" * 32,
                     thresholds={"pneumonia": np.float32(0.25), "covid19": 0.5}, device="cpu")
    result = records.ResultIn.from_prediction(prediction, info)
    scan_id = records.save_scan(database, alice, pixels=sample_pixels(), metadata={},
                                enhancement={}, scan_date=date(2024, 1, 2), filename="a.png",
                                result=result)

    stored = records.load_scan(database, alice, scan_id).results[0]
    assert stored.probabilities == {"pneumonia": 0.75, "covid19": 0.125}
    assert (stored.model_name, stored.model_version, stored.checkpoint_sha256) == (
        "cxr-net", "2.1.0", "cd" * 32)
    assert stored.thresholds == {"pneumonia": 0.25, "covid19": 0.5}
    assert stored.ood_score == 3.5 and not stored.abstained

    abstained = records.ResultIn.from_prediction(
        Prediction({"pneumonia": 0.1}, True, "This is not a chest radiograph.", 99.0), info)
    assert abstained.abstained and abstained.abstain_reason == "This is not a chest radiograph."
