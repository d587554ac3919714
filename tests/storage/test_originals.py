"""Original upload files kept on request (storage.originals via storage.scans), on both backends."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import select

from core.views import View
from services.keys import rotate_user_key
from storage import bootstrap, rekey, schema
from storage.actor import Actor
from storage.db import Database
from storage.policy import AccessDenied
from storage.scans import NoOriginalKept, delete_scan, load_original, save_scan
from tests.storage._factories import sample_pixels

#: Stands for an uploaded file: what matters is that it comes back byte for byte.
UPLOADED = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


def _save(db: Database, actor: Actor, *, keep: bool, content: bytes = UPLOADED) -> int:
    return save_scan(
        db,
        actor,
        pixels=sample_pixels(),
        metadata={"source_format": "png", "width": 32, "height": 32},
        enhancement={},
        scan_date=date(2025, 1, 2),
        filename="my film.png",
        view=View.PA,
        content=content,
        keep_original=keep,
    )


def _blob_files(db: Database) -> dict[str, bytes]:
    return {info.name: db.blobs.read(info.name) for info in db.blobs.live()}


@pytest.fixture
def alice(make_user) -> Actor:
    return make_user("alice")


def test_a_kept_original_comes_back_byte_for_byte_and_is_stored_sealed(
    database: Database, alice: Actor
) -> None:
    scan_id = _save(database, alice, keep=True)
    original = load_original(database, alice, scan_id)
    assert (original.filename, original.data) == ("my film.png", UPLOADED)
    stored = _blob_files(database)
    assert len(stored) == 2
    assert not any(UPLOADED[8:200] in data for data in stored.values())
    with database.transaction() as session:
        actions = session.exec(
            select(schema.AuditEvent.action).where(schema.AuditEvent.record_id == scan_id)
        ).all()
    assert "read_original" in actions


def test_without_the_request_nothing_more_is_stored(database: Database, alice: Actor) -> None:
    scan_id = _save(database, alice, keep=False)
    assert len(_blob_files(database)) == 1
    with pytest.raises(NoOriginalKept):
        load_original(database, alice, scan_id)


def test_another_patient_cannot_download_the_original(
    database: Database, alice: Actor, make_user
) -> None:
    scan_id = _save(database, alice, keep=True)
    with pytest.raises(AccessDenied):
        load_original(database, make_user("bob"), scan_id)


def test_deleting_the_scan_deletes_its_original_and_the_sweep_keeps_live_ones(
    database: Database, alice: Actor
) -> None:
    kept = _save(database, alice, keep=True, content=UPLOADED + b"one")
    gone = _save(database, alice, keep=True, content=UPLOADED + b"two")
    assert len(_blob_files(database)) == 4
    delete_scan(database, alice, gone)
    assert len(_blob_files(database)) == 2
    assert bootstrap.sweep_orphans(database, min_age=timedelta(0)) == []
    assert load_original(database, alice, kept).data == UPLOADED + b"one"


def test_rotating_the_key_reseals_the_original_too(database: Database, alice: Actor) -> None:
    scan_id = _save(database, alice, keep=True)
    before = set(_blob_files(database))
    (account,) = rekey.accounts(database, "alice")
    rotation = rotate_user_key(database, account, operator="(test)")
    assert (rotation.records, rotation.images) == (2, 2)
    assert not before & set(_blob_files(database))
    with database.transaction() as session:
        row = session.get(schema.ScanOriginal, scan_id)
        assert row is not None and row.key_version == 2
    assert load_original(database, alice, scan_id).data == UPLOADED
