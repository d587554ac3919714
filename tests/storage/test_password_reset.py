"""An admin password reset opens nothing unseen (issue 12 item 3), on SQLite and PostgreSQL.

The admin sees the temporary password. Until the user has changed it, every storage entry
point that acts for the account refuses; the reset ends the user's sessions; and the reset,
the first login after it and every read in that session reach the user's access list and a
sentence shown at their next login.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

import storage
from core.views import View
from storage import (
    accounts,
    audit,
    cohort,
    export,
    notes,
    profile,
    rekey,
    scans,
    sessions,
    sharing,
    teleconsults,
)
from storage.access_log import (
    ResetNotice,
    access_log,
    acknowledge_emergency_reads,
    emergency_read_notices,
    reset_notices,
)
from storage.actor import Actor
from storage.db import Database
from storage.policy import PasswordChangeRequired
from tests.storage._factories import sample_result, save_sample_scan
from tests.storage.conftest import PASSWORD

NEW_PASSWORD = "my own new passphrase"
ATTACKER_PASSWORD = "the admin's own choice"
ADMIN_CLIENT = "203.0.113.9"


@dataclass
class Reset:
    """Accounts of every role whose password an admin has just reset, and their records."""

    db: Database
    patient: Actor
    clinician: Actor
    analyst: Actor
    admin: Actor
    scan_id: int
    grant_id: int
    request_id: int


Call = Callable[[Reset], object]

#: Every public storage function that acts for an actor, called by the reset account of the
#: role that may otherwise use it.
CALLS: dict[str, Call] = {
    "access_log.access_log": lambda r: access_log(r.db, r.patient, r.patient.user_id),
    "access_log.acknowledge_emergency_reads": lambda r: acknowledge_emergency_reads(
        r.db, r.patient, 1
    ),
    "access_log.emergency_read_notices": lambda r: emergency_read_notices(r.db, r.patient),
    "access_log.reset_notices": lambda r: reset_notices(r.db, r.patient),
    "accounts.admin_clear_throttle": lambda r: accounts.admin_clear_throttle(
        r.db, r.admin, r.patient.username
    ),
    "accounts.admin_reset_password": lambda r: accounts.admin_reset_password(
        r.db, r.admin, r.clinician.username
    ),
    "accounts.list_users": lambda r: accounts.list_users(r.db, r.admin),
    "accounts.registration_alerts": lambda r: accounts.registration_alerts(r.db, r.admin),
    "accounts.register": lambda r: accounts.register(
        r.db, "newcomer", PASSWORD, "clinician", by=r.admin
    ),
    "accounts.set_disabled": lambda r: accounts.set_disabled(
        r.db, r.admin, r.patient.username, True
    ),
    "audit.list_events": lambda r: audit.list_events(r.db, r.admin),
    "audit.verify_chain": lambda r: audit.verify_chain(r.db, r.admin),
    "teleconsults.start": lambda r: teleconsults.start(r.db, r.clinician, r.patient.user_id),
    "teleconsults.end": lambda r: teleconsults.end(r.db, r.clinician, 1),
    "cohort.cohort_summary": lambda r: cohort.cohort_summary(r.db, r.analyst, ["finding"]),
    "cohort.shift_sample": lambda r: cohort.shift_sample(r.db, r.analyst),
    "export.export_user": lambda r: export.export_user(r.db, r.patient),
    "notes.add_note": lambda r: notes.add_note(r.db, r.clinician, r.scan_id, "looks stable"),
    "notes.list_notes": lambda r: notes.list_notes(r.db, r.patient, r.scan_id),
    "notes.mark_notes_read": lambda r: notes.mark_notes_read(r.db, r.patient, r.scan_id),
    "notes.unread_note_counts": lambda r: notes.unread_note_counts(r.db, r.patient),
    "profile.get_birth_year": lambda r: profile.get_birth_year(
        r.db, r.clinician, r.patient.user_id
    ),
    "profile.get_display_name": lambda r: profile.get_display_name(
        r.db, r.patient, r.patient.user_id
    ),
    "profile.set_birth_year": lambda r: profile.set_birth_year(r.db, r.patient, 1970),
    "profile.set_display_name": lambda r: profile.set_display_name(r.db, r.patient, "Al"),
    "rekey.reseal_batch": lambda r: rekey.reseal_batch(
        r.db, r.patient.user_id, by=r.patient, operator=None
    ),
    "rekey.start": lambda r: rekey.start(r.db, r.patient.user_id, by=r.patient, operator=None),
    "scans.add_results": lambda r: scans.add_results(
        r.db, r.patient, [(r.scan_id, sample_result())]
    ),
    "scans.delete_scan": lambda r: scans.delete_scan(r.db, r.patient, r.scan_id),
    "scans.find_saved_files": lambda r: scans.find_saved_files(r.db, r.patient, [b"file"]),
    "scans.list_scans": lambda r: scans.list_scans(r.db, r.clinician, r.patient.user_id),
    "scans.list_scan_metadata": lambda r: scans.list_scan_metadata(
        r.db, r.clinician, r.patient.user_id
    ),
    "scans.load_scan": lambda r: scans.load_scan(r.db, r.patient, r.scan_id),
    "scans.load_original": lambda r: scans.load_original(r.db, r.patient, r.scan_id),
    "scans.save_scan": lambda r: save_sample_scan(r.db, r.patient),
    "scans.update_scan_date": lambda r: scans.update_scan_date(
        r.db, r.patient, r.scan_id, date(2024, 1, 2)
    ),
    "scans.update_scan_view": lambda r: scans.update_scan_view(r.db, r.patient, r.scan_id, View.PA),
    "sharing.approve_emergency_access": lambda r: sharing.approve_emergency_access(
        r.db, r.clinician, r.request_id
    ),
    "sharing.grant_access": lambda r: sharing.grant_access(r.db, r.patient, r.clinician.username),
    "sharing.list_emergency_accesses": lambda r: sharing.list_emergency_accesses(r.db, r.patient),
    "sharing.list_grants": lambda r: sharing.list_grants(r.db, r.patient),
    "sharing.pending_emergency_requests": lambda r: sharing.pending_emergency_requests(
        r.db, r.admin
    ),
    "sharing.request_emergency_access": lambda r: sharing.request_emergency_access(
        r.db, r.clinician, r.patient.username, "collapsed in the waiting room"
    ),
    "sharing.refuse_emergency_access": lambda r: sharing.refuse_emergency_access(
        r.db, r.patient, True
    ),
    "sharing.refuses_emergency_access": lambda r: sharing.refuses_emergency_access(r.db, r.patient),
    "sharing.revoke_access": lambda r: sharing.revoke_access(r.db, r.patient, r.grant_id),
    "sharing.shared_patients": lambda r: sharing.shared_patients(r.db, r.clinician),
}

#: Entry points allowed while a change is pending, and why.
EXEMPT = {
    "accounts.change_password": "the change itself",
    "accounts.logout": "ends a session; reads and writes nothing else",
    "sessions.start_session": "opens the session in which the password is changed",
    "accounts.is_active": "the account's own state, which pages read to route the user",
    "accounts.must_change_password": "the account's own state: sends the user to the form",
    "audit.append": "the writer entry points call inside their own, already checked, transaction",
    "audit.append_read": "the reading entry points call inside their own, already checked, "
    "transaction",
}


def _actor_entry_points() -> set[str]:
    """``module.function`` of every public storage function taking an actor argument."""
    found = set()
    for info in pkgutil.iter_modules(storage.__path__):
        if info.name == "policy":  # the checks themselves, not entry points
            continue
        module = importlib.import_module(f"storage.{info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or function.__module__ != module.__name__:
                continue
            annotations = [
                str(p.annotation) for p in inspect.signature(function).parameters.values()
            ]
            if any("Actor" in a for a in annotations):
                found.add(f"{info.name}.{name}")
    return found


def test_every_storage_entry_point_taking_an_actor_is_covered() -> None:
    """A new storage function acting for a user must be added to CALLS (or justified)."""
    entry_points = _actor_entry_points()
    assert entry_points - CALLS.keys() - EXEMPT.keys() == set()
    assert (CALLS.keys() | EXEMPT.keys()) - entry_points == set()


@pytest.fixture
def reset(database: Database, admin: Actor, make_user) -> Reset:
    patient, other = make_user("alice"), make_user("bob")
    clinician, colleague = make_user("doc", "clinician"), make_user("eve", "clinician")
    analyst, admin2 = make_user("ana", "analyst"), make_user("admin2", "admin")
    scan_id = save_sample_scan(database, patient)
    notes.add_note(database, patient, scan_id, "my own note")
    grant_id = sharing.grant_access(database, patient, "doc")
    request_id = sharing.request_emergency_access(
        database, colleague, "bob", "unresponsive in the clinic, no consent possible"
    )
    assert other.user_id != patient.user_id
    for actor in (patient, clinician, analyst, admin2):
        accounts.admin_reset_password(database, admin, actor.username)
    return Reset(database, patient, clinician, analyst, admin2, scan_id, grant_id, request_id)


def test_reset_accounts_are_refused_everywhere_until_the_password_is_changed(
    reset: Reset, admin: Actor
) -> None:
    passed = []
    for name, call in CALLS.items():
        try:
            call(reset)
        except PasswordChangeRequired as refused:
            assert "new password" in str(refused)
        else:
            passed.append(name)
    assert passed == []

    # Only the change itself is allowed; afterwards the account works again.
    temporary = accounts.admin_reset_password(reset.db, admin, reset.patient.username)
    accounts.change_password(reset.db, reset.patient, temporary, NEW_PASSWORD)
    assert [s.id for s in scans.list_scans(reset.db, reset.patient, reset.patient.user_id)] == [
        reset.scan_id
    ]


def test_reset_ends_every_session_of_the_user(database, admin, make_user) -> None:
    alice = make_user("alice")
    tokens = [sessions.start_session(database, alice, None) for _ in range(2)]
    accounts.admin_reset_password(database, admin, "alice")
    for token in tokens:
        with pytest.raises(sessions.SessionEnded, match="reset your password"):
            sessions.check_session(database, token)


def test_admin_using_a_reset_password_is_refused_then_shown_to_the_patient(
    database, admin, make_user
) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)

    # The attack: reset, log in with the temporary password, try to read.
    temporary = accounts.admin_reset_password(database, admin, "alice")
    as_alice = accounts.authenticate(database, "alice", temporary, ADMIN_CLIENT)
    sessions.start_session(database, as_alice, ADMIN_CLIENT)
    with pytest.raises(PasswordChangeRequired):
        scans.list_scans(database, as_alice, alice.user_id)
    with pytest.raises(PasswordChangeRequired):
        scans.load_scan(database, as_alice, scan_id)
    with pytest.raises(PasswordChangeRequired):
        export.export_user(database, as_alice)
    # The only way on is to take the account over, which locks the patient out ...
    accounts.change_password(database, as_alice, temporary, ATTACKER_PASSWORD)
    scans.list_scans(database, as_alice, alice.user_id)
    scans.load_scan(database, as_alice, scan_id)
    accounts.logout(database, as_alice, None)
    with pytest.raises(accounts.AuthError):
        accounts.authenticate(database, "alice", PASSWORD, None)

    # ... so the patient has their password reset again and sees all of it at next login.
    temporary = accounts.admin_reset_password(database, admin, "alice")
    patient = accounts.authenticate(database, "alice", temporary, "198.51.100.7")
    accounts.change_password(database, patient, temporary, NEW_PASSWORD)

    notices = reset_notices(database, patient)
    assert len(notices) == 2
    taken_over = notices[1].sentence()
    assert taken_over.startswith("An administrator reset your password on ")
    assert "the first login after it was on " in taken_over
    assert f"from {ADMIN_CLIENT}; 2 records were read in that session." in taken_over
    assert "If this was not you" in taken_over
    assert "from 198.51.100.7; 0 records were read" in notices[0].sentence()

    log = access_log(database, patient, patient.user_id)
    seen = [(e.actor_username, e.action, e.after_reset) for e in reversed(log)]
    assert seen[:6] == [
        ("admin", "admin_reset_password", False),
        ("alice", "login", True),
        ("alice", "change_password", True),
        ("alice", "list_scans", True),
        ("alice", "read_scan", True),
        ("alice", "logout", True),
    ]
    first_login = next(e for e in log if e.action == "login" and e.after_reset)
    assert first_login.details["client"] in {ADMIN_CLIENT, "198.51.100.7"}


def test_own_reads_outside_a_reset_session_stay_out_of_the_access_list(
    database, admin, make_user
) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    scans.load_scan(database, alice, scan_id)
    assert access_log(database, alice, alice.user_id) == []
    assert reset_notices(database, alice) == []

    temporary = accounts.admin_reset_password(database, admin, "alice")
    accounts.change_password(
        database, accounts.authenticate(database, "alice", temporary, None), temporary, NEW_PASSWORD
    )
    later = accounts.authenticate(database, "alice", NEW_PASSWORD, None)
    scans.load_scan(database, later, scan_id)  # a later session with her own password
    log = access_log(database, later, later.user_id)
    assert not [e for e in log if e.action == "read_scan"]
    assert [n.records_read for n in reset_notices(database, later)] == [0]


def test_reset_notice_sentences() -> None:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    unused = ResetNotice(at, None, None, 0).sentence()
    assert unused.startswith("An administrator reset your password on 2026-03-01 09:30 UTC;")
    assert "nobody has logged in with the temporary password" in unused
    one = ResetNotice(at, at, "192.0.2.1", 1).sentence()
    assert "on 2026-03-01 09:30 UTC from 192.0.2.1; 1 record was read in that session." in one
