"""Key rotation (services.keys): the master key (key file or MASTER_KEY) and one user's data key.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from core.settings import load_settings
from services.keys import rotate_master_key, rotate_user_key
from storage import crypto, profile, quarantine, rekey, schema, sharing
from storage.accounts import authenticate
from storage.audit import verify_chain
from storage.bootstrap import open_database, pending_key_file
from storage.export import export_user
from storage.notes import add_note, list_notes
from storage.policy import AccessDenied
from storage.scans import add_results, list_scans, load_scan
from storage.sharing import grant_access
from tests.storage._factories import sample_result, save_sample_scan
from tests.storage.conftest import ADMIN_PASSWORD


def _rotations(database) -> list[schema.AuditEvent]:
    with database.transaction() as session:
        return list(
            session.exec(
                select(schema.AuditEvent).where(schema.AuditEvent.action == "rotate_master_key")
            ).all()
        )


def test_rotation_with_a_key_file_replaces_the_file(settings_env) -> None:
    env = {name: value for name, value in settings_env.items() if name != "MASTER_KEY"}
    settings = load_settings(env)
    database = open_database(settings)
    old = settings.key_file.read_text()
    try:
        rotation = rotate_master_key(database, None, operator="(test)")
        assert rotation.key_file_replaced and rotation.rewrapped >= 1
        assert crypto.decode_master_key(settings.key_file.read_text()) == rotation.new_key
        assert not pending_key_file(settings).exists()
        (event,) = _rotations(database)
        assert event.actor_username == "(test)"
    finally:
        database.close()
    reopened = open_database(settings)
    try:
        assert authenticate(reopened, "admin", ADMIN_PASSWORD, None).role == "admin"
        assert verify_chain(reopened).ok
    finally:
        reopened.close()
    with pytest.raises(crypto.DecryptionError):
        open_database(load_settings({**env, "MASTER_KEY": old.strip()}))


def test_rotation_to_a_given_key_leaves_master_key_to_the_operator(settings_env) -> None:
    settings = load_settings(settings_env)
    database = open_database(settings)
    new_key = crypto.new_master_key()
    try:
        rotation = rotate_master_key(database, new_key, operator="(test)")
        assert rotation.new_key == new_key and not rotation.key_file_replaced
    finally:
        database.close()
    moved = load_settings({**settings_env, "MASTER_KEY": crypto.encode_master_key(new_key)})
    reopened = open_database(moved)
    try:
        assert verify_chain(reopened).ok
    finally:
        reopened.close()


# --- Rotating one user's data key (services.keys.rotate_user_key) ---


def _key_versions(database, owner_id: int) -> set[int]:
    """The key versions of every sealed row of ``owner_id``."""
    found: set[int] = set()
    with database.engine.begin() as conn:
        for table, owner in _SEALED_TABLES:
            found |= set(
                conn.execute(
                    sa.text(f"SELECT key_version FROM {table} WHERE {owner} = :o"), {"o": owner_id}
                ).scalars()
            )
    return found


_SEALED_TABLES = [
    ("scans", "owner_id"),
    ("results", "owner_id"),
    ("notes", "owner_id"),
    ("emergency_accesses", "patient_id"),
    ("profiles", "user_id"),
]


def _everything(database, alice, doctor) -> dict:
    """Every sealed value of Alice's, read the ways the app reads them (the clinician's too)."""
    summaries = list_scans(database, alice, alice.user_id)
    return {
        "summaries": [(s.id, s.scan_date, s.filename, s.results) for s in summaries],
        "pixels": [load_scan(database, alice, s.id).pixels.tobytes() for s in summaries],
        "notes": [[n.text for n in list_notes(database, alice, s.id)] for s in summaries],
        "shared": [s.id for s in list_scans(database, doctor, alice.user_id)],
        "emergency": [e.reason for e in sharing.list_emergency_accesses(database, alice)],
        "birth_year": profile.get_birth_year(database, alice, alice.user_id),
        "export": export_user(database, alice)["scans"],
    }


@pytest.fixture
def alice_records(database, make_user):
    """Alice with two scans and results, notes by her and her clinician, a grant, an
    emergency request and a birth year."""
    alice, doctor = make_user("alice"), make_user("doctor", role="clinician")
    make_user("other_doctor", role="clinician")
    first = save_sample_scan(database, alice, seed=1)
    second = save_sample_scan(database, alice, seed=2, scan_date=date(2024, 6, 1))
    add_results(database, alice, [(first, sample_result(pneumonia=0.2))])
    grant_access(database, alice, "doctor", hours=1)
    add_note(database, alice, first, "my own note")
    add_note(database, doctor, second, "the clinician's note")
    sharing.request_emergency_access(database, doctor, "alice", "unconscious in the ward", 30)
    profile.set_birth_year(database, alice, 1970)
    return alice, doctor


def _blob_names(database, owner_id: int) -> set[str]:
    with database.engine.begin() as conn:
        return set(
            conn.execute(
                sa.text("SELECT blob_name FROM scans WHERE owner_id = :o"), {"o": owner_id}
            ).scalars()
        )


def test_rotation_reseals_every_record_and_image_and_the_old_key_is_no_longer_needed(
    database, alice_records
) -> None:
    alice, doctor = alice_records
    before = _everything(database, alice, doctor)
    old_blobs = _blob_names(database, alice.user_id)
    seen: list[tuple[int, int]] = []
    (account,) = rekey.accounts(database, "alice")

    rotation = rotate_user_key(
        database,
        account,
        operator="(test)",
        on_progress=lambda d, t: seen.append((d, t)),
        batch_size=3,
    )

    assert rotation.key_version == 2 and rotation.images == 2
    assert rotation.records == seen[-1][0] == seen[-1][1] == 2 + 3 + 2 + 1 + 1
    assert _key_versions(database, alice.user_id) == {2}
    new_blobs = _blob_names(database, alice.user_id)
    assert not new_blobs & old_blobs
    assert not any(info.name in old_blobs for info in database.blobs.live())
    with database.engine.begin() as conn:
        sizes = conn.execute(
            sa.text("SELECT blob_name, blob_bytes FROM scans WHERE owner_id = :o"),
            {"o": alice.user_id},
        ).all()
    assert all(size == database.blobs.size(name) for name, size in sizes), "quota sizes kept"
    # The old key opens nothing any more: without it, everything still opens the same.
    with database.engine.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM user_keys WHERE user_id = :u AND version = 1"),
            {"u": alice.user_id},
        )
    assert _everything(database, alice, doctor) == before
    # New values are sealed with the new version at once.
    save_sample_scan(database, alice, seed=5)
    assert _key_versions(database, alice.user_id) == {2}
    actions = [e.action for e in _events(database, alice.user_id)]
    assert actions.count("rotate_user_key") == 1 and actions.count("reseal_records") == 3


def _events(database, patient_id: int) -> list[schema.AuditEvent]:
    with database.transaction() as session:
        return list(
            session.exec(
                select(schema.AuditEvent).where(schema.AuditEvent.patient_id == patient_id)
            ).all()
        )


class _PowerCut(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way handles it."""


def test_a_rotation_cut_half_way_leaves_every_record_readable_and_loses_no_image(
    database, alice_records, monkeypatch
) -> None:
    alice, doctor = alice_records
    before = _everything(database, alice, doctor)
    writes = []
    real_write = database.blobs.write

    def write_then_die(name: str, data: bytes) -> None:
        if writes:  # the second image: mid-way through the second batch
            raise _PowerCut()
        writes.append(name)
        real_write(name, data)

    monkeypatch.setattr(database.blobs, "write", write_then_die)
    (account,) = rekey.accounts(database, "alice")
    with pytest.raises(_PowerCut):
        rotate_user_key(database, account, operator="(test)", batch_size=1)
    monkeypatch.undo()

    assert _key_versions(database, alice.user_id) == {1, 2}
    assert _everything(database, alice, doctor) == before
    for name in _blob_names(database, alice.user_id):
        assert database.blobs.size(name) > 0

    finished = rotate_user_key(database, account, operator="(test)")
    assert finished.key_version == 3
    assert _key_versions(database, alice.user_id) == {3}
    assert _everything(database, alice, doctor) == before


def test_a_crash_after_a_batch_commits_leaves_the_old_image_to_the_quarantine(
    database, alice_records, monkeypatch
) -> None:
    alice, doctor = alice_records
    before = _everything(database, alice, doctor)
    old_blobs = _blob_names(database, alice.user_id)

    def die(name: str) -> None:
        raise _PowerCut()

    monkeypatch.setattr(database.blobs, "discard", die)
    (account,) = rekey.accounts(database, "alice")
    with pytest.raises(_PowerCut):
        rotate_user_key(database, account, operator="(test)", batch_size=1)
    monkeypatch.undo()

    # The first scan's row committed with its new image; the old one is an orphan now.
    assert _everything(database, alice, doctor) == before
    # The sweep as bootstrap runs it, minus its wait for other open transactions (other
    # test databases share the PostgreSQL server).
    moved = quarantine.sweep(
        database.blobs, lambda: _blob_names(database, alice.user_id), min_age=timedelta(0)
    )
    assert [entry.name for entry in moved] == [
        name for name in old_blobs if name not in _blob_names(database, alice.user_id)
    ]
    assert {entry.name for entry in quarantine.entries(database.blobs)} == {
        entry.name for entry in moved
    }


def test_patients_rotate_their_own_key_only(database, alice_records, make_user) -> None:
    alice, _ = alice_records
    bob = make_user("bob")
    (account,) = rekey.accounts(database, "alice")
    with pytest.raises(AccessDenied):
        rotate_user_key(database, account, by=bob)
    assert _key_versions(database, alice.user_id) == {1}
    assert rotate_user_key(database, account, by=alice).key_version == 2
    assert _key_versions(database, alice.user_id) == {2}
    with pytest.raises(rekey.UnknownUser):
        rekey.accounts(database, "nobody")
