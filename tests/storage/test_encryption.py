"""Encryption at rest: no plaintext in the database or blobs; tampering and key mix-ups fail."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import stat
from datetime import date

import pytest
import sqlalchemy as sa

from core.settings import load_settings
from storage import accounts, crypto, sharing
from storage.crypto import DecryptionError
from storage.notes import add_note
from storage.scans import list_scans, load_scan, save_scan
from tests.storage._factories import sample_pixels, save_sample_scan

NOTE = "Patient reports night sweats since March"
FILENAME = "jane_doe_chest_2024.png"
SCAN_DATE = date(2023, 11, 27)


def _exec(db, sql: str, **params) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


def _dump_database(db) -> bytes:
    """Every byte of every row of every table, as the database stores it."""
    chunks = []
    with db.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                for value in row:
                    chunks.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\n".join(chunks)


def test_no_plaintext_in_database_or_blobs(database, admin, make_user, settings) -> None:
    alice = make_user("alice")
    doc = accounts.operator_create_user(database, "doc", "a long enough pass", "clinician")
    pixels = sample_pixels(7, size=64)
    scan_id = save_scan(
        database,
        alice,
        pixels=pixels,
        metadata={
            "modality": "DX",
            "study_date": "2023-11-27",
            "patient_sex": "F",
            "body_part": "CHEST",
            "view_position": "PA",
        },
        enhancement={"clahe": True},
        scan_date=SCAN_DATE,
        filename=FILENAME,
    )
    sharing.grant_access(database, alice, "doc")
    add_note(database, doc, scan_id, NOTE, {"x": 3, "y": 4})
    sharing.request_emergency_access(database, doc, "alice", "collapsed in clinic, unresponsive")
    load_scan(database, doc, scan_id)
    database.close()  # checkpoint the SQLite WAL into the main file

    secrets_found = [
        NOTE.encode(),
        FILENAME.encode(),
        b"jane_doe",
        b"2023-11-27",
        b"night sweats",
        b"collapsed in clinic",
        pixels[10].tobytes(),
        b"CHEST",
    ]
    stored = _dump_database(database)
    raw_files = b"".join(p.read_bytes() for p in settings.data_dir.rglob("*") if p.is_file())
    for needle in secrets_found:
        assert needle not in stored, needle
        assert needle not in raw_files, needle


def test_tampered_ciphertext_fails_loudly(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    with database.engine.connect() as conn:
        payload = conn.execute(sa.text("SELECT payload FROM results")).scalar_one()
    flipped = payload[:-1] + bytes([payload[-1] ^ 1])
    _exec(database, "UPDATE results SET payload = :p", p=flipped)
    with pytest.raises(DecryptionError):
        load_scan(database, alice, scan_id)


def test_tampered_blob_fails_loudly(database, make_user) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    [blob] = list(database.blobs.live())
    data = bytearray(database.blobs.read(blob.name))
    data[100] ^= 0xFF
    database.blobs.write(blob.name, bytes(data))
    with pytest.raises(DecryptionError):
        load_scan(database, alice, scan_id)


def test_rows_swapped_between_users_fail(database, make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    a_scan = save_sample_scan(database, alice, seed=1)
    b_scan = save_sample_scan(database, bob, seed=2)
    with database.engine.connect() as conn:
        a_payload = conn.execute(
            sa.text("SELECT payload FROM scans WHERE id=:i"), {"i": a_scan}
        ).scalar_one()
    # Bob's row now holds Alice's ciphertext: wrong key and wrong associated data.
    _exec(database, "UPDATE scans SET payload = :p WHERE id = :i", p=a_payload, i=b_scan)
    with pytest.raises(DecryptionError):
        load_scan(database, bob, b_scan)


def test_ciphertext_copied_to_another_row_of_same_user_fails(database, make_user) -> None:
    alice = make_user("alice")
    first = save_sample_scan(database, alice, seed=1, filename="first.png")
    second = save_sample_scan(database, alice, seed=2, filename="second.png")
    with database.engine.connect() as conn:
        payload = conn.execute(
            sa.text("SELECT payload FROM scans WHERE id=:i"), {"i": first}
        ).scalar_one()
    _exec(database, "UPDATE scans SET payload = :p WHERE id = :i", p=payload, i=second)
    with pytest.raises(DecryptionError):
        load_scan(database, alice, second)


def test_moving_a_scan_to_another_owner_fails(database, make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    scan_id = save_sample_scan(database, alice)
    _exec(database, "UPDATE scans SET owner_id = :b WHERE id = :i", b=bob.user_id, i=scan_id)
    _exec(database, "UPDATE results SET owner_id = :b", b=bob.user_id)
    with pytest.raises(DecryptionError):
        list_scans(database, bob, bob.user_id)


def test_wrong_master_key_cannot_unwrap_data_keys(database, make_user, settings) -> None:
    alice = make_user("alice")
    with database.transaction() as session:
        wrapped = session.exec(
            sa.select(sa.text("wrapped_key"))
            .select_from(sa.text("user_keys"))
            .where(sa.text(f"user_id = {alice.user_id}"))
        ).scalar_one()
    with pytest.raises(DecryptionError):
        crypto.unwrap_key(secrets.token_bytes(32), wrapped, alice.user_id, 1)
    with pytest.raises(DecryptionError):
        crypto.unwrap_key(crypto.load_master_key(settings), wrapped, alice.user_id + 1, 1)


def test_key_file_is_created_private_with_a_warning(tmp_path, caplog) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    with caplog.at_level(logging.WARNING, logger="storage.crypto"):
        first = crypto.load_master_key(settings)
    assert "local-only" in caplog.text
    assert stat.S_IMODE(os.stat(settings.key_file).st_mode) == 0o600
    assert crypto.load_master_key(settings) == first


@pytest.mark.parametrize("text", ["not base64!!", base64.b64encode(b"short").decode()])
def test_malformed_master_key_is_refused(text) -> None:
    with pytest.raises(crypto.MasterKeyError):
        crypto.decode_master_key(text)
