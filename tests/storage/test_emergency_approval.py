"""Emergency access needs a second, independent person (issue 12 item 3, issue 22 items 2
and 5), on SQLite and PostgreSQL.

A clinician's request opens nothing until someone independent of them approves it in time;
nobody approves their own request, nor one whose requester shares a creator or resetter with
them, nor while either account is fresh from an admin; a patient may refuse emergency access
in advance; the patient sees the request, the approval and every read under it, the reads in
a banner until acknowledged; an administrator never reads the stated reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa

from storage import accounts, audit, migrations, notes, schema, sharing
from storage.access_log import access_log, acknowledge_emergency_reads, emergency_read_notices
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


@contextmanager
def _days_ago(monkeypatch: pytest.MonkeyPatch, days: int) -> Iterator[None]:
    """Run the block as if it were ``days`` days ago (the audit trail's clock included)."""
    real = schema.utcnow
    monkeypatch.setattr(schema, "utcnow", lambda: real() - timedelta(days=days))
    try:
        yield
    finally:
        monkeypatch.setattr(schema, "utcnow", real)


def _reset_and_take_over(database: Database, admin: Actor, name: str) -> Actor:
    """An admin resets a user's password and sets the new one themselves (they saw the
    temporary one): the account is theirs now, under its owner's name."""
    temporary = accounts.admin_reset_password(database, admin, name)
    actor = accounts.authenticate(database, name, temporary, None)
    accounts.change_password(database, actor, temporary, "the admin's choice now")
    return actor


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
        "created or reset the account of the clinician who asks",
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
        "created or reset the account of the clinician who asks",
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
    # The admin sees who, for whom and when; the reason only a clinician reads.
    assert [(p.id, p.clinician_username, p.patient_username, p.reason) for p in pending] == [
        (request_id, "doc", "alice", None)
    ]
    assert [p.reason for p in sharing.pending_emergency_requests(database, eve)] == [REASON]
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
        ("eve", "view_emergency_requests", False),
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


# --------------------------------------------------------- independence (issue 22 item 2)


def test_sock_puppet_chain_an_admin_creates_two_clinicians_who_approve_each_other(
    database, admin, make_user, monkeypatch
) -> None:
    """The attack: the admin creates X and Y (setting their first passwords), X requests
    access to a patient and Y approves: one person alone opens the records. Refused, and still
    refused once the accounts are old."""
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    with _days_ago(monkeypatch, database.settings.emergency_independence_days + 30):
        x = _staff_created_by(database, admin, "dr_x", "clinician")
        y = _staff_created_by(database, admin, "dr_y", "clinician")
    request_id = sharing.request_emergency_access(database, x, "alice", REASON)
    _refused(
        lambda: sharing.approve_emergency_access(database, y, request_id),
        "The same person created or reset both your account and the account of the clinician",
    )
    _refused(lambda: load_scan(database, x, scan_id), "do not have access")
    # Someone independent of both (made at the command line) may approve.
    eve = make_user("eve", "clinician")
    sharing.approve_emergency_access(database, eve, request_id)
    load_scan(database, x, scan_id)


def test_sock_puppets_of_two_admins_wait_out_the_independence_period(
    database, admin, make_user
) -> None:
    """Fresh accounts from different admins: independent on paper, but their owners have not
    had the time to notice what is done in their name."""
    make_user("alice")
    admin2 = make_user("admin2", "admin")
    x = _staff_created_by(database, admin, "dr_x", "clinician")
    y = _staff_created_by(database, admin2, "dr_y", "clinician")
    request_id = sharing.request_emergency_access(database, x, "alice", REASON)
    days = database.settings.emergency_independence_days
    _refused(
        lambda: sharing.approve_emergency_access(database, y, request_id),
        f"created or had its password reset by an administrator in the last {days} days",
    )
    # The approver's own fresh account counts too: a veteran's request, a puppet's approval.
    eve = make_user("eve", "clinician")
    request_id = sharing.request_emergency_access(database, eve, "alice", REASON)
    _refused(
        lambda: sharing.approve_emergency_access(database, y, request_id),
        f"in the last {days} days",
    )


def test_colleague_account_chain_an_admin_clinician_takes_over_a_colleagues_account(
    database, admin, make_user, monkeypatch
) -> None:
    """The attack: an administrator who also works as a clinician (an account they created
    for themselves long ago) resets a colleague's password, sets the new one (they saw the
    temporary one), requests access as themselves and approves it as the colleague."""
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    colleague = make_user("dr_colleague", "clinician")  # a real colleague's own account
    with _days_ago(monkeypatch, 400):
        own = _staff_created_by(database, admin, "dr_boss", "clinician")
    with _days_ago(monkeypatch, database.settings.emergency_independence_days + 15):
        held = _reset_and_take_over(database, admin, colleague.username)
    request_id = sharing.request_emergency_access(database, own, "alice", REASON)
    _refused(
        lambda: sharing.approve_emergency_access(database, held, request_id),
        "The same person created or reset both",
    )
    # The other way round: the held colleague requests, the admin's own clinician approves.
    request_id = sharing.request_emergency_access(database, held, "alice", REASON)
    _refused(
        lambda: sharing.approve_emergency_access(database, own, request_id),
        "The same person created or reset both",
    )
    # And the admin approving the held colleague's request directly.
    _refused(
        lambda: sharing.approve_emergency_access(database, admin, request_id),
        "created or reset the account of the clinician who asks",
    )
    _refused(lambda: load_scan(database, own, scan_id), "do not have access")
    _refused(lambda: load_scan(database, held, scan_id), "do not have access")


def test_a_recent_reset_by_another_admin_also_waits(database, admin, make_user) -> None:
    """Whoever handled the temporary password may hold the account now: a reset makes it
    fresh again, whichever admin did it."""
    make_user("alice")
    admin2 = make_user("admin2", "admin")
    doc, eve = make_user("doc", "clinician"), make_user("eve", "clinician")
    request_id = sharing.request_emergency_access(database, doc, "alice", REASON)
    _reset_and_take_over(database, admin2, "eve")
    eve = accounts.find_actor(database, "eve")
    _refused(
        lambda: sharing.approve_emergency_access(database, eve, request_id), "in the last 30 days"
    )
    sharing.approve_emergency_access(database, admin, request_id)


def test_independent_accounts_of_different_admins_approve_after_the_period(
    database, admin, make_user, monkeypatch
) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    admin2 = make_user("admin2", "admin")
    with _days_ago(monkeypatch, database.settings.emergency_independence_days + 1):
        x = _staff_created_by(database, admin, "dr_x", "clinician")
        y = _staff_created_by(database, admin2, "dr_y", "clinician")
    request_id = sharing.request_emergency_access(database, x, "alice", REASON)
    sharing.approve_emergency_access(database, y, request_id)
    load_scan(database, x, scan_id)


# ------------------------------------------------- the patient's own say (issue 22 item 2)


def test_patient_who_refused_in_advance_is_never_opened_in_an_emergency(
    database, make_user
) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    doc, eve = make_user("doc", "clinician"), make_user("eve", "clinician")
    assert sharing.refuses_emergency_access(database, alice) is False

    # Refused after a request: nobody can approve it any more.
    pending = sharing.request_emergency_access(database, doc, "alice", REASON)
    sharing.refuse_emergency_access(database, alice, True)
    assert sharing.refuses_emergency_access(database, alice) is True
    _refused(lambda: sharing.approve_emergency_access(database, eve, pending), "refused emergency")
    _refused(
        lambda: sharing.request_emergency_access(database, doc, "alice", REASON),
        "refused emergency access to their records in advance",
    )
    with pytest.raises(AccessDenied):
        sharing.refuse_emergency_access(database, doc, True)

    # Allowed again, approved, then refused: the open access reads nothing more.
    sharing.refuse_emergency_access(database, alice, False)
    request_id = sharing.request_emergency_access(database, doc, "alice", REASON)
    sharing.approve_emergency_access(database, eve, request_id)
    load_scan(database, doc, scan_id)
    sharing.refuse_emergency_access(database, alice, True)
    _refused(lambda: load_scan(database, doc, scan_id), "do not have access")
    assert sharing.shared_patients(database, doc) == []
    # A share the patient gives still works: the refusal is of emergencies only.
    sharing.grant_access(database, alice, "doc", hours=1)
    load_scan(database, doc, scan_id)


def test_every_emergency_read_is_a_banner_until_the_patient_acknowledges_it(
    database, make_user
) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    doc, eve = make_user("doc", "clinician"), make_user("eve", "clinician")
    assert emergency_read_notices(database, alice) == []
    request_id = sharing.request_emergency_access(database, doc, "alice", REASON)
    sharing.approve_emergency_access(database, eve, request_id)
    assert emergency_read_notices(database, alice) == []  # asked and approved, nothing read
    list_scans(database, doc, alice.user_id)
    load_scan(database, doc, scan_id)

    [notice] = emergency_read_notices(database, alice)
    assert (notice.clinician_username, notice.reads) == ("doc", 2)
    sentence = notice.sentence()
    assert sentence.startswith("EMERGENCY ACCESS: doc opened your records without your permission")
    assert "2 times, between " in sentence and REASON not in sentence
    # Another patient's or a clinician's call sees nothing of it.
    with pytest.raises(AccessDenied):
        emergency_read_notices(database, doc)

    # A read while the banner is on screen stays shown after the acknowledgement.
    load_scan(database, doc, scan_id)
    acknowledge_emergency_reads(database, alice, notice.through_seq)
    [later] = emergency_read_notices(database, alice)
    assert later.reads == 1 and "once, on " in later.sentence()
    # An acknowledgement cannot reach past the reads that exist.
    acknowledge_emergency_reads(database, alice, later.through_seq + 1000)
    assert emergency_read_notices(database, alice) == []
    load_scan(database, doc, scan_id)
    assert [n.reads for n in emergency_read_notices(database, alice)] == [1]


# ------------------------------------------------- admins read no clinical text (item 5)


def test_admin_functions_return_no_reason_note_or_file_name(database, admin, make_user) -> None:
    """The attack: an admin reads a clinician's emergency reason (\u201cUnconscious in ED, need
    prior films\u201d), a note or a file name through the functions their pages use. The
    admin sees who, when and that a reason was given; clinicians still read the reason."""
    reason = "Unconscious in ED, need prior films of this patient"
    note = "Left lower lobe opacity, compare with March"
    file_name = "alice_smith_ward7_chest.png"
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice, filename=file_name)
    notes.add_note(database, alice, scan_id, note)
    doc, eve = make_user("doc", "clinician"), make_user("eve", "clinician")
    sharing.request_emergency_access(database, doc, "alice", reason)

    [seen] = sharing.pending_emergency_requests(database, admin)
    assert (seen.clinician_username, seen.patient_username, seen.reason) == ("doc", "alice", None)
    assert seen.created_at and seen.approve_before
    [for_clinician] = sharing.pending_emergency_requests(database, eve)
    assert for_clinician.reason == reason

    shown_to_admin = repr(
        [
            sharing.pending_emergency_requests(database, admin),
            accounts.list_users(database, admin),
            audit.list_events(database, admin),
            audit.verify_chain(database, admin),
            accounts.registration_alerts(database, admin),
        ]
    )
    for secret in (reason, "Unconscious", note, "opacity", file_name, "ward7"):
        assert secret not in shown_to_admin
