"""Security regressions (issue 7 item 4), on SQLite and PostgreSQL.

Covered elsewhere and not repeated here:
- every role x action pair, with already expired and revoked grants: ``test_policy.py``;
- a flipped byte in a blob file or a result column: ``test_encryption.py``
  (``test_tampered_blob_fails_loudly``, ``test_tampered_ciphertext_fails_loudly``);
- an edited event, edited details, a deleted middle event, a deleted last event and a
  rebuilt chain: ``test_audit.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select

from storage import accounts, audit, cohort, schema, sharing, teleconsults
from storage.access_log import access_log
from storage.accounts import AuthError
from storage.crypto import DecryptionError
from storage.export import export_user
from storage.notes import add_note, list_notes
from storage.policy import AccessDenied
from storage.scans import delete_scan, list_scans, load_scan, update_scan_date
from tests.storage._factories import save_sample_scan
from tests.storage.conftest import PASSWORD


def _refusals(calls: dict[str, Callable[[], object]], expected: type[Exception]) -> list[str]:
    """Names of the calls that did not raise ``expected`` (empty when all were refused)."""
    missed = []
    for name, call in calls.items():
        try:
            call()
        except expected:
            continue
        missed.append(name)
    return missed


def test_stale_actors_of_disabled_accounts_are_refused(database, admin, make_user) -> None:
    alice, doc = make_user("alice"), make_user("doc", "clinician")
    ana, admin2 = make_user("ana", "analyst"), make_user("admin2", "admin")
    scan_id = save_sample_scan(database, alice)
    sharing.grant_access(database, alice, "doc")
    list_scans(database, doc, alice.user_id)
    for name in ("alice", "doc", "ana", "admin2"):
        accounts.set_disabled(database, admin, name, True)

    # The Actor objects a page may still hold are used as they are.
    calls = {
        "list_scans": lambda: list_scans(database, alice, alice.user_id),
        "load_scan": lambda: load_scan(database, alice, scan_id),
        "save_scan": lambda: save_sample_scan(database, alice),
        "update_scan_date": lambda: update_scan_date(database, alice, scan_id, date(2024, 1, 1)),
        "delete_scan": lambda: delete_scan(database, alice, scan_id),
        "add_note": lambda: add_note(database, alice, scan_id, "note"),
        "list_notes": lambda: list_notes(database, alice, scan_id),
        "export_user": lambda: export_user(database, alice),
        "grant_access": lambda: sharing.grant_access(database, alice, "doc"),
        "list_grants": lambda: sharing.list_grants(database, alice),
        "access_log": lambda: access_log(database, alice, alice.user_id),
        "change_password": lambda: accounts.change_password(
            database, alice, PASSWORD, "a different passphrase"
        ),
        "clinician list_scans": lambda: list_scans(database, doc, alice.user_id),
        "clinician load_scan": lambda: load_scan(database, doc, scan_id),
        "clinician add_note": lambda: add_note(database, doc, scan_id, "note"),
        "shared_patients": lambda: sharing.shared_patients(database, doc),
        "request_emergency_access": lambda: sharing.request_emergency_access(
            database, doc, "alice", "collapsed in the waiting room"
        ),
        "cohort_summary": lambda: cohort.cohort_summary(database, ana, ["finding"]),
        "shift_sample": lambda: cohort.shift_sample(database, ana),
        "list_users": lambda: accounts.list_users(database, admin2),
        "list_events": lambda: audit.list_events(database, admin2),
        "verify_chain": lambda: audit.verify_chain(database, admin2),
    }
    assert _refusals(calls, AccessDenied) == []
    assert len(list_scans(database, _reenabled(database, admin, alice), alice.user_id)) == 1


def _reenabled(database, admin, actor):
    accounts.set_disabled(database, admin, actor.username, False)
    return actor


@pytest.mark.parametrize("ending", ["expiry", "revoke"])
def test_clinician_access_ends_with_the_grant(database, make_user, ending: str) -> None:
    alice, doc = make_user("alice"), make_user("doc", "clinician")
    scan_id = save_sample_scan(database, alice)
    grant_id = sharing.grant_access(database, alice, "doc", hours=2)
    assert [s.id for s in list_scans(database, doc, alice.user_id)] == [scan_id]
    add_note(database, doc, scan_id, "seen during the grant")

    if ending == "revoke":
        sharing.revoke_access(database, alice, grant_id)
    else:
        with database.transaction() as session:
            grant = session.get(schema.ShareGrant, grant_id)
            grant.expires_at = schema.utcnow() - timedelta(seconds=1)
            session.add(grant)

    calls = {
        "list_scans": lambda: list_scans(database, doc, alice.user_id),
        "load_scan": lambda: load_scan(database, doc, scan_id),
        "add_note": lambda: add_note(database, doc, scan_id, "after the end"),
        "list_notes": lambda: list_notes(database, doc, scan_id),
        "teleconsult_start": lambda: teleconsults.start(database, doc, alice.user_id),
    }
    assert _refusals(calls, AccessDenied) == []
    assert sharing.shared_patients(database, doc) == []
    texts = [n.text for n in list_notes(database, alice, scan_id)]
    assert texts == ["seen during the grant"]


def _flip_middle_byte(database, table: str) -> None:
    with database.engine.begin() as conn:
        row_id, payload = conn.execute(sa.text(f"SELECT id, payload FROM {table}")).one()
        middle = len(payload) // 2
        flipped = payload[:middle] + bytes([payload[middle] ^ 0x01]) + payload[middle + 1 :]
        conn.execute(
            sa.text(f"UPDATE {table} SET payload = :p WHERE id = :i"), {"p": flipped, "i": row_id}
        )


@pytest.mark.parametrize("table", ["scans", "results", "notes"])
def test_tampered_sealed_column_fails_and_returns_nothing(database, make_user, table: str) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    add_note(database, alice, scan_id, "my note")
    _flip_middle_byte(database, table)

    reads = {"export_user": lambda: export_user(database, alice)}
    if table in ("scans", "results"):
        reads["list_scans"] = lambda: list_scans(database, alice, alice.user_id)
        reads["load_scan"] = lambda: load_scan(database, alice, scan_id)
    if table == "notes":
        reads["list_notes"] = lambda: list_notes(database, alice, scan_id)
    assert _refusals(reads, DecryptionError) == []
    # A failed read is rolled back whole: no "read" event claims data was shown.
    with database.transaction() as session:
        actions = session.exec(select(schema.AuditEvent.action)).all()
    assert "export" not in actions and "read_scan" not in actions


def test_brute_force_is_slowed_without_locking_out_the_owner(database, make_user) -> None:
    """Reported: the per-account lock let anyone lock any account, the admin's included."""
    make_user("alice")
    messages = set()
    for attempt in range(10):
        with pytest.raises(AuthError) as failed:
            accounts.authenticate(database, "alice", f"guess number {attempt}", "198.51.100.7")
        messages.add(re.sub(r"\d+ (second|minute)s?", "N", str(failed.value)))
    # The guesser's client waits (even with the right password), told when to try again ...
    with pytest.raises(AuthError, match="try again in"):
        accounts.authenticate(database, "alice", PASSWORD, "198.51.100.7")
    # ... and so does a guesser at a name that does not exist, in the same words.
    for attempt in range(10):
        with pytest.raises(AuthError) as failed:
            accounts.authenticate(database, "nobody-here", f"guess {attempt}", "198.51.100.8")
        messages.add(re.sub(r"\d+ (second|minute)s?", "N", str(failed.value)))
    assert messages == {
        accounts.GENERIC_LOGIN_ERROR,
        "Login failed: wrong username or password, or too many attempts; try again in N.",
    }
    # The owner, from their own client, is not locked out.
    assert accounts.authenticate(database, "alice", PASSWORD, "192.0.2.44").username == "alice"


def test_a_deleted_scans_id_never_opens_the_next_upload(database, make_user) -> None:
    """Reported: a clinician granted one scan read the patient's next, private upload."""
    patient = make_user("pat_reuse")
    clinician = make_user("dr_reuse", "clinician")
    kept = save_sample_scan(database, patient, seed=1)
    shared = save_sample_scan(database, patient, seed=2)  # the highest id, as in the report
    grant_id = sharing.grant_access(database, patient, "dr_reuse", scan_ids=[shared])
    assert load_scan(database, clinician, shared).filename == "chest_front.png"
    delete_scan(database, patient, shared)
    private = save_sample_scan(database, patient, seed=3)
    assert private != shared
    for scan_id in (private, kept):
        with pytest.raises(AccessDenied):
            load_scan(database, clinician, scan_id)
    with database.transaction() as session:
        links = session.exec(
            select(schema.ShareGrantScan).where(schema.ShareGrantScan.grant_id == grant_id)
        ).all()
        assert links == []
