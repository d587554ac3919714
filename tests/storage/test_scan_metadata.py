"""storage.scans.list_scan_metadata: a record's stored metadata without its images, for the
exports that reference DICOM films (services.dicom_refs), under the same access rules."""

from __future__ import annotations

import pytest

from storage import audit
from storage.policy import AccessDenied
from storage.scans import list_scan_metadata, load_scan, save_scan
from storage.sharing import grant_access
from tests.storage._factories import sample_pixels, save_sample_scan


def test_metadata_of_the_scans_the_actor_may_read(database, make_user, admin) -> None:
    alice = make_user("alice", "patient")
    first = save_sample_scan(database, alice, seed=1)
    second = save_scan(
        database,
        alice,
        pixels=sample_pixels(2),
        metadata={"source_format": "dicom", "sop_instance_uid": "1.2.3.4"},
        enhancement={},
        scan_date=load_scan(database, alice, first).scan_date,
        filename="film.dcm",
    )
    mine = list_scan_metadata(database, alice, alice.user_id)
    assert set(mine) == {first, second}
    assert mine[second] == load_scan(database, alice, second).metadata
    assert mine[second]["sop_instance_uid"] == "1.2.3.4"

    doctor = make_user("dr.x", "clinician")
    with pytest.raises(AccessDenied):
        list_scan_metadata(database, doctor, alice.user_id)
    grant_access(database, alice, "dr.x", scan_ids=[second])
    assert set(list_scan_metadata(database, doctor, alice.user_id)) == {second}

    events = [e for e in audit.list_events(database, admin) if e.action == "read_scan_metadata"]
    assert sorted(e.actor_username for e in events) == ["alice", "dr.x"]
