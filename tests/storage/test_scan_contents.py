"""Tests for recognising a file already saved (keyed content hashes, storage.contents)."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
import sqlalchemy as sa
from sqlmodel import select

from core.views import View
from storage import migrations
from storage.scans import AlreadySaved, delete_scan, find_saved_files, list_scans, save_scan
from storage.schema import ScanContent
from tests.storage._factories import sample_pixels

FILE_A = b"\x89PNG pretend file A" * 50
FILE_B = b"\x89PNG pretend file B" * 50


def _save(db, actor, content: bytes, when: date = date(2026, 1, 5), seed: int = 0) -> int:
    return save_scan(
        db,
        actor,
        pixels=sample_pixels(seed),
        metadata={"source_format": "png", "width": 32, "height": 32},
        enhancement={},
        scan_date=when,
        filename="film.png",
        view=View.PA,
        content=content,
    )


def test_the_same_file_is_stored_once_and_named_when_saved_again(database, make_user) -> None:
    alice = make_user("alice")
    first = _save(database, alice, FILE_A)
    with pytest.raises(AlreadySaved) as refused:
        _save(database, alice, FILE_A, when=date(2026, 2, 1), seed=1)
    assert refused.value.copy.scan_id == first
    assert str(refused.value).startswith("Already in your record: the X-ray of 5 Jan 2026, ")
    assert [s.id for s in list_scans(database, alice, alice.user_id)] == [first]


def test_another_file_and_another_patient_are_not_duplicates(database, make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    _save(database, alice, FILE_A)
    _save(database, alice, FILE_B)
    _save(database, bob, FILE_A)
    assert len(list_scans(database, alice, alice.user_id)) == 2
    assert len(list_scans(database, bob, bob.user_id)) == 1


def test_find_saved_files_reports_positions_and_dates(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = _save(database, alice, FILE_B, when=date(2026, 1, 7))
    found = find_saved_files(database, alice, [FILE_A, FILE_B])
    assert list(found) == [1]
    assert found[1].scan_id == scan_id and found[1].scan_date == date(2026, 1, 7)


def test_a_deleted_scan_can_be_saved_again(database, make_user) -> None:
    alice = make_user("alice")
    delete_scan(database, alice, _save(database, alice, FILE_A))
    assert find_saved_files(database, alice, [FILE_A]) == {}
    _save(database, alice, FILE_A)
    assert len(list_scans(database, alice, alice.user_id)) == 1


def test_a_database_reader_cannot_confirm_a_known_image(database, make_user) -> None:
    """Attack: hash a known image and look for it in the table; nor link two patients' files."""
    alice, bob = make_user("alice"), make_user("bob")
    _save(database, alice, FILE_A)
    _save(database, bob, FILE_A)
    with database.transaction() as session:
        stored = session.exec(select(ScanContent.mac)).all()
    assert len(stored) == 2 and stored[0] != stored[1]
    for digest in (hashlib.sha256(FILE_A).hexdigest(), hashlib.sha1(FILE_A).hexdigest()):
        assert digest not in stored


def test_step_9_adds_its_tables_to_a_database_from_before_it(database) -> None:
    with database.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE scan_contents"))
        conn.execute(sa.text("DROP TABLE profiles"))
        conn.execute(sa.text("DELETE FROM schema_version WHERE version >= 9"))
    assert migrations.apply_migrations(database.engine) == max(s[0] for s in migrations.MIGRATIONS)
    with database.engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert inspector.has_table("scan_contents") and inspector.has_table("profiles")
