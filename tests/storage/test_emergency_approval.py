"""Emergency access needs a second person (issue 12 item 3), on SQLite and PostgreSQL.

A clinician's request opens nothing until someone else approves it in time; nobody approves
their own request or one concerning an account they created or reset in the last 24 hours;
the patient sees the request, the approval and every read under it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from storage import accounts, migrations, schema, sharing
from storage.access_log import access_log
from storage.actor import Actor
from storage.db import Database
from storage.policy import AccessDenied
from storage.scans import list_scans, load_scan
from tests.storage._factories import save_sample_scan
from tests.storage.conftest import PASSWORD

REASON = "unresponsive in the emergency room, no consent possible"
OWN_PASSWORD = "the clinician's own pass"


def _staff_created_by(database: Database, admin: Actor, name: str, role: str) -> Actor:
    """An account an admin created, after its first password change (by whoever knew it)."""
    accounts.register(database, name, PASSWORD, role, by=admin)
    actor = accounts.authenticate(database, name, PASSWORD, None)
    accounts.change_password(database, actor, PASSWORD, OWN_PASSWORD)
    return actor


def _refused(call, match: str) -> None:
    with pytest.raises(AccessDenied, match=match):
        call()


def test_admin_cannot_open_records_with_a_clinician_they_created(
    database, admin, make_user
) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    # The admin creates a clinician (and so knows its password) and requests as them.
    mallory = _staff_created_by(database, admin, "mallory", "clinician")
    request_id = sharing.request_emergency_access(database, mallory, "alice", REASON)

    _refused(lambda: list_scans(database, mallory, alice.user_id), "do not have access")
    _refused(lambda: load_scan(database, mallory, scan_id), "do not have access")
    assert sharing.shared_patients(database, mallory) == []
    _refused(
        lambda: sharing.approve_emergency_access(database, admin, request_id),
        "created or reset one of the accounts",
    )
    _refused(
        lambda: sharing.approve_emergency_access(database, mallory, request_id),
        "cannot approve your own",
    )
    _refused(lambda: load_scan(database, mallory, scan_id), "do not have access")
    # The patient sees the attempt.
    log = access_log(database, alice, alice.user_id)
    assert ("mallory", "emergency_request") in [(e.actor_username, e.action) for e in log]
    [info] = sharing.list_emergency_accesses(database, alice)
    assert (info.clinician_username, info.reason, info.approver_username) == (
        "mallory",
        REASON,
        None,
    )
    assert info.state == "waiting for approval"


def test_clinician_cannot_approve_own_request(database, make_user) -> None:
    make_user("alice")
    doc = make_user("doc", "clinician")
    request_id = sharing.request_emergency_access(database, doc, "alice", REASON)
    _refused(
        lambda: sharing.approve_emergency_access(database, doc, request_id),
        "cannot approve your own",
    )


def test_approver_who_created_the_patient_recently_is_refused(database, admin, make_user) -> None:
    admin2 = make_user("admin2", "admin")
    accounts.register(database, "newpatient", PASSWORD, by=admin2)  # an hour ago, or now
    doc, eve = make_user("doc", "clinician"), make_user("eve", "clinician")
    request_id = sharing.request_emergency_access(database, doc, "newpatient", REASON)
    _refused(
        lambda: sharing.approve_emergency_access(database, admin2, request_id),
        "created or reset one of the accounts",
    )
    sharing.approve_emergency_access(database, eve, request_id)


def test_approver_who_reset_the_requester_recently_is_refused(database, admin, make_user) -> None:
    make_user("alice")
    doc = make_user("doc", "clinician")
    temporary = accounts.admin_reset_password(database, admin, "doc")
    doc = accounts.authenticate(database, "doc", temporary, None)
    accounts.change_password(database, doc, temporary, OWN_PASSWORD)
    request_id = sharing.request_emergency_access(database, doc, "alice", REASON)
    _refused(
        lambda: sharing.approve_emergency_access(database, admin, request_id),
        "created or reset one of the accounts",
    )


def test_approval_after_the_time_limit_is_refused(database, make_user) -> None:
    alice = make_user("alice")
    save_sample_scan(database, alice)
    doc, eve = make_user("doc", "clinician"), make_user("eve", "clinician")
    request_id = sharing.request_emergency_access(database, doc, "alice", REASON)
    with database.transaction() as session:
        row = session.get_one(schema.EmergencyAccess, request_id)
        limit = timedelta(minutes=database.settings.emergency_approval_minutes)
        assert row.expires_at - row.created_at == limit
        row.expires_at = schema.utcnow() - timedelta(seconds=1)
        session.add(row)
    assert sharing.pending_emergency_requests(database, eve) == []
    _refused(
        lambda: sharing.approve_emergency_access(database, eve, request_id),
        "not approved in time",
    )
    _refused(lambda: list_scans(database, doc, alice.user_id), "do not have access")
    [info] = sharing.list_emergency_accesses(database, alice)
    assert info.state == "not approved in time"


def test_second_clinician_approval_opens_records_and_the_patient_sees_it_all(
    database, admin, make_user
) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    doc, eve = make_user("doc", "clinician"), make_user("eve", "clinician")
    request_id = sharing.request_emergency_access(database, doc, "alice", REASON, minutes=30)

    pending = sharing.pending_emergency_requests(database, admin)
    assert [(p.id, p.clinician_username, p.patient_username, p.reason) for p in pending] == [
        (request_id, "doc", "alice", REASON)
    ]
    assert [p.own for p in sharing.pending_emergency_requests(database, doc)] == [True]
    sharing.approve_emergency_access(database, eve, request_id)
    _refused(
        lambda: sharing.approve_emergency_access(database, admin, request_id), "already approved"
    )
    assert sharing.pending_emergency_requests(database, admin) == []

    assert [s.id for s in list_scans(database, doc, alice.user_id)] == [scan_id]
    load_scan(database, doc, scan_id)
    [shared] = sharing.shared_patients(database, doc)
    assert (shared.username, shared.emergency) == ("alice", True)

    log = access_log(database, alice, alice.user_id)
    seen = [(e.actor_username, e.action, e.emergency) for e in reversed(log)]
    assert seen == [
        ("doc", "emergency_request", True),
        ("admin", "view_emergency_requests", False),
        ("doc", "view_emergency_requests", False),
        ("eve", "emergency_approve", True),
        ("doc", "list_scans", True),
        ("doc", "read_scan", True),
    ]
    [info] = sharing.list_emergency_accesses(database, alice)
    assert (info.approver_username, info.state) == ("eve", "open")
    assert info.approved_at is not None
    assert info.expires_at - info.approved_at == timedelta(minutes=30)

    # The access ends with its minutes.
    with database.transaction() as session:
        row = session.get_one(schema.EmergencyAccess, request_id)
        row.expires_at = schema.utcnow() - timedelta(seconds=1)
        session.add(row)
    _refused(lambda: load_scan(database, doc, scan_id), "do not have access")


def test_step_6_leaves_earlier_emergency_accesses_closed(database, make_user) -> None:
    """A break-glass access from before step 6 had no second person: it opens nothing."""
    alice = make_user("alice")
    save_sample_scan(database, alice)
    doc = make_user("doc", "clinician")
    request_id = sharing.request_emergency_access(database, doc, "alice", REASON)
    added = {"minutes", "approver_id", "approved_at"}
    current = schema.table_of(schema.EmergencyAccess)
    legacy = sa.Table(
        current.name,
        sa.MetaData(),
        *(
            sa.Column(c.name, c.type, primary_key=c.primary_key)
            for c in current.columns
            if c.name not in added
        ),
    )
    with database.engine.begin() as conn:
        row = conn.execute(sa.select(current)).mappings().one()
        current.drop(conn)
        legacy.create(conn)
        values = {k: v for k, v in row.items() if k not in added}
        # Back then, a declared access opened records at once until it expired.
        values["expires_at"] = schema.utcnow() + timedelta(hours=1)
        conn.execute(legacy.insert().values(**values))
        migrations._emergency_approval(conn)
        migrated = conn.execute(
            sa.text("SELECT minutes, approver_id, approved_at FROM emergency_accesses")
        ).one()
    assert tuple(migrated) == (60, None, None)
    _refused(lambda: list_scans(database, doc, alice.user_id), "do not have access")
    [info] = sharing.list_emergency_accesses(database, alice)
    assert (info.id, info.reason, info.state) == (request_id, REASON, "waiting for approval")
