"""Tests for storage.sealing: a sealed value opens only for its own row, owner and key version."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from storage import cohort, sharing
from storage.actor import Actor
from storage.crypto import DecryptionError
from storage.db import Database
from storage.notes import add_note, list_notes
from storage.scans import list_scans, load_scan
from storage.sealing import RowSealer
from tests.storage._factories import save_sample_scan

KEYS = {1: secrets.token_bytes(32), 2: secrets.token_bytes(32)}


def test_values_and_bytes_open_for_the_row_they_were_sealed_for() -> None:
    sealer = RowSealer(7, KEYS)
    value = {"text": "stable", "marks": [1.5, None]}
    assert sealer.open_json("notes", 3, 1, sealer.seal_json("notes", 3, 1, value)) == value
    assert sealer.open("blob", 3, 2, sealer.seal("blob", 3, 2, b"\x00pixels")) == b"\x00pixels"
    assert sealer.version == 2


@pytest.mark.parametrize(
    "table, row_id, owner_id, version",
    [("results", 3, 7, 1), ("notes", 4, 7, 1), ("notes", 3, 8, 1), ("notes", 3, 7, 2)],
    ids=["other table", "other row", "other owner", "other key version"],
)
def test_a_value_moved_to_other_associated_data_does_not_open(
    table: str, row_id: int, owner_id: int, version: int
) -> None:
    sealed = RowSealer(7, KEYS).seal_json("notes", 3, 1, {"text": "stable"})
    with pytest.raises(DecryptionError):
        RowSealer(owner_id, KEYS).open_json(table, row_id, version, sealed)


def test_altered_bytes_do_not_open() -> None:
    sealer = RowSealer(7, KEYS)
    sealed = sealer.seal("blob", 3, 1, b"pixels")
    with pytest.raises(DecryptionError):
        sealer.open("blob", 3, 1, sealed[:-1] + bytes([sealed[-1] ^ 1]))


def test_an_unknown_key_version_is_a_decryption_error() -> None:
    sealer = RowSealer(7, {1: KEYS[1]})
    with pytest.raises(DecryptionError):
        sealer.seal_json("notes", 3, 2, {"text": "stable"})
    with pytest.raises(DecryptionError):
        sealer.open_json("notes", 3, 2, sealer.seal_json("notes", 3, 1, {"text": "stable"}))


#: A read of each sealed table: ``(table, read(db, users, scan_id))``.
_READERS: dict[str, tuple[str, Callable[[Database, dict[str, Actor], int], object]]] = {
    "scan": ("scans", lambda db, u, _: list_scans(db, u["alice"], u["alice"].user_id)),
    "result": ("results", lambda db, u, scan_id: load_scan(db, u["alice"], scan_id)),
    "note": ("notes", lambda db, u, scan_id: list_notes(db, u["alice"], scan_id)),
    "emergency reason": (
        "emergency_accesses",
        lambda db, u, _: sharing.list_emergency_accesses(db, u["alice"]),
    ),
    "cohort scan": ("scans", lambda db, u, _: cohort.cohort_summary(db, u["ana"], ["sex"])),
    "cohort result": ("results", lambda db, u, _: cohort.cohort_summary(db, u["ana"], ["finding"])),
}


@pytest.mark.parametrize("reader", list(_READERS))
def test_a_row_naming_an_unknown_key_version_is_a_decryption_error(
    database, make_user, reader: str
) -> None:
    users = {
        "alice": make_user("alice"),
        "doc": make_user("doc", "clinician"),
        "ana": make_user("ana", "analyst"),
    }
    scan_id = save_sample_scan(database, users["alice"])
    add_note(database, users["alice"], scan_id, "feeling better")
    sharing.request_emergency_access(database, users["doc"], "alice", "collapsed in the clinic")
    table, read = _READERS[reader]
    read(database, users, scan_id)  # readable before the change
    with database.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {table} SET key_version = 2"))
    with pytest.raises(DecryptionError):
        read(database, users, scan_id)
