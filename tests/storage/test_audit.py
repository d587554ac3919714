"""Tests for storage.audit: hash chain verification, tamper detection and concurrency."""

from __future__ import annotations

import json
import logging
import threading

import pytest
import sqlalchemy as sa
from sqlmodel import select

from core.errors import UserError
from storage import accounts, audit, crypto, schema, sharing
from storage.access_log import access_log
from storage.audit_anchors import Anchored, Anchors
from storage.bootstrap import open_database, rotate_master_key
from storage.crypto import DecryptionError
from storage.notes import add_note
from storage.scans import load_scan
from tests.storage._factories import save_sample_scan
from tests.storage.conftest import PASSWORD


def _events(db) -> list[schema.AuditEvent]:
    with db.transaction() as session:
        return list(session.exec(select(schema.AuditEvent).order_by(schema.AuditEvent.seq)))


def _exec(db, sql: str, **params) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text(sql), params)


@pytest.fixture
def busy(database, make_user):
    """A database with a few dozen events from a realistic session."""
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    load_scan(database, alice, scan_id)
    add_note(database, alice, scan_id, "feeling better")
    accounts.logout(database, alice, None)
    assert audit.verify_chain(database).ok
    return database


def test_intact_chain_verifies(busy) -> None:
    report = audit.verify_chain(busy)
    assert report == audit.ChainReport(True, len(_events(busy)), None, None)


def test_edited_event_is_detected(busy) -> None:
    target = _events(busy)[3]
    _exec(busy, "UPDATE audit_events SET action = 'nothing' WHERE id = :id", id=target.id)
    report = audit.verify_chain(busy)
    assert not report.ok and report.first_bad_id == target.id
    assert "altered" in report.reason


def test_edited_details_are_detected(busy) -> None:
    target = _events(busy)[2]
    _exec(busy, "UPDATE audit_events SET details = '{}' WHERE id = :id", id=target.id)
    assert audit.verify_chain(busy).first_bad_id == target.id


def test_deleted_middle_event_is_detected(busy) -> None:
    events = _events(busy)
    _exec(busy, "DELETE FROM audit_events WHERE id = :id", id=events[2].id)
    report = audit.verify_chain(busy)
    assert not report.ok and report.first_bad_id == events[3].id


def test_deleted_last_event_is_detected(busy) -> None:
    last = _events(busy)[-1]
    _exec(busy, "DELETE FROM audit_events WHERE id = :id", id=last.id)
    report = audit.verify_chain(busy)
    assert not report.ok and "expects" in report.reason


def test_rebuilt_chain_without_master_key_is_detected(busy) -> None:
    # An attacker drops the last event and rewrites the head to match: the head MAC fails.
    events = _events(busy)
    _exec(busy, "DELETE FROM audit_events WHERE id = :id", id=events[-1].id)
    _exec(
        busy,
        "UPDATE audit_head SET seq = :seq, hash = :hash",
        seq=events[-2].seq,
        hash=events[-2].hash,
    )
    report = audit.verify_chain(busy)
    assert not report.ok and "signature" in report.reason


def test_inserted_event_is_detected(busy) -> None:
    events = _events(busy)
    _exec(busy, "UPDATE audit_events SET seq = seq + 1000 WHERE seq > :seq", seq=events[1].seq)
    _exec(
        busy,
        "INSERT INTO audit_events (seq, ts, action, emergency, details, prev_hash, hash)"
        " VALUES (:seq, '2020-01-01', 'forged', false, '{}', :prev, :h)",
        seq=events[1].seq + 1,
        prev=events[1].hash,
        h="0" * 64,
    )
    report = audit.verify_chain(busy)
    assert not report.ok and report.reason


def test_access_log_lists_other_users_reads(database, admin, make_user) -> None:
    alice = make_user("alice")
    doc = accounts.operator_create_user(database, "doc", "a long enough pass", "clinician")
    scan_id = save_sample_scan(database, alice)
    sharing.grant_access(database, alice, "doc")
    load_scan(database, doc, scan_id)
    log = access_log(database, alice, alice.user_id)
    assert [(e.actor_username, e.action) for e in log] == [("doc", "read_scan")]
    assert log[0].record_id == scan_id and not log[0].emergency


def test_events_hold_no_medical_data(busy) -> None:
    text = " ".join(f"{e.action} {e.details}" for e in _events(busy))
    assert "feeling better" not in text and "2024-03-14" not in text
    assert "chest_front" not in text


def test_concurrent_appends_form_one_chain(database, make_user) -> None:
    users = [make_user(f"user{i}") for i in range(4)]
    errors: list[BaseException] = []

    def worker(actor) -> None:
        try:
            for _ in range(10):
                accounts.logout(database, actor, None)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    events = _events(database)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert audit.verify_chain(database).ok


def test_truncated_tail_refuses_the_next_event_and_repair_keeps_the_evidence(
    database, make_user
) -> None:
    """The reported attack: delete the tail with raw SQL, then let an ordinary event re-sign it."""
    alice = make_user("alice")
    for seed in range(3):
        save_sample_scan(database, alice, seed=seed)
    events = _events(database)
    old_head = events[-1]
    kept = events[-4]
    _exec(database, "DELETE FROM audit_events WHERE seq > :seq", seq=kept.seq)

    with pytest.raises(audit.AuditTrailBroken) as refused:
        save_sample_scan(database, alice, seed=9)
    assert isinstance(refused.value, UserError)
    with database.transaction() as session:
        assert session.execute(sa.text("SELECT COUNT(*) FROM scans")).scalar_one() == 3
    with pytest.raises(audit.AuditTrailBroken):
        accounts.authenticate(database, "alice", PASSWORD, None)

    report = audit.verify_chain(database)
    assert not report.ok
    [recorded] = report.breaks
    assert (recorded.head_seq, recorded.last_seq) == (old_head.seq, kept.seq)
    assert recorded.repaired_at is None

    repaired = audit.repair_chain(database, "(test operator)")
    assert repaired.id == recorded.id and repaired.repaired_by == "(test operator)"
    report = audit.verify_chain(database)
    assert report.ok, report.reason
    [evidence] = report.breaks
    assert evidence.repaired_at is not None and evidence.repair_seq == old_head.seq + 1
    repair_event = _events(database)[-1]
    details = json.loads(repair_event.details)
    assert repair_event.action == audit.REPAIR_ACTION
    assert (details["old_head_seq"], details["old_head_hash"]) == (old_head.seq, old_head.hash)
    assert (details["found_seq"], details["found_hash"]) == (kept.seq, kept.hash)
    assert repair_event.actor_username == "(test operator)"

    save_sample_scan(database, alice, seed=10)
    assert audit.verify_chain(database).ok
    with pytest.raises(audit.NothingToRepair):
        audit.repair_chain(database, "(test operator)")


def test_a_forged_repair_event_without_the_master_key_does_not_verify(busy) -> None:
    database = busy
    events = _events(database)
    _exec(database, "DELETE FROM audit_events WHERE seq = :seq", seq=events[-1].seq)
    forged = schema.AuditEvent(
        seq=events[-1].seq + 5,
        ts=events[-1].ts,
        action=audit.REPAIR_ACTION,
        emergency=False,
        details=json.dumps({"found_seq": events[-2].seq}),
        prev_hash=events[-2].hash,
    )
    forged.hash = audit._event_hash(forged)
    with database.engine.begin() as conn:
        conn.execute(
            sa.insert(schema.AuditEvent.__table__).values(**forged.model_dump(exclude={"id"}))
        )
    report = audit.verify_chain(database)
    assert not report.ok and "expects" in report.reason
    with pytest.raises(audit.AuditTrailBroken):
        accounts.register(database, "mallory", PASSWORD)


def _head_row(db) -> dict:
    with db.engine.begin() as conn:
        query = sa.text("SELECT seq, hash, mac FROM audit_head WHERE id = 1")
        return dict(conn.execute(query).mappings().one())


def _put_back(db, head: dict) -> None:
    """The database-only attacker's move: every event after ``head`` gone, ``head`` back."""
    _exec(db, "DELETE FROM audit_events WHERE seq > :seq", seq=head["seq"])
    _exec(db, "UPDATE audit_head SET seq = :seq, hash = :hash, mac = :mac WHERE id = 1", **head)


def test_an_old_head_put_back_after_deleting_later_events_is_detected_for_good(
    settings, database, make_user, caplog
) -> None:
    """The reported attack: a copy of the head row kept while the trail grows (an emergency
    request, a grant, a read), then the events since deleted and the copy written back. Its
    MAC is valid, so the database alone cannot tell; the anchors in the blob store can."""
    alice, doc = make_user("alice"), make_user("doc", "clinician")
    scan_id = save_sample_scan(database, alice)
    snapshot = _head_row(database)
    sharing.request_emergency_access(database, doc, "alice", "Unconscious in ED, need films")
    sharing.grant_access(database, alice, "doc")
    load_scan(database, doc, scan_id)
    assert audit.verify_chain(database).ok
    reached = _head_row(database)["seq"]

    _put_back(database, snapshot)

    report = audit.verify_chain(database)
    assert not report.ok and "removed" in report.reason
    assert f"ends at event {snapshot['seq']}" in report.reason
    [cut] = report.breaks
    assert (cut.head_seq, cut.last_seq, cut.repaired_at) == (reached, snapshot["seq"], None)
    # The trail is not continued over the cut: the next audited action is refused.
    with pytest.raises(audit.AuditTrailBroken):
        load_scan(database, alice, scan_id)
    database.close()

    with caplog.at_level(logging.ERROR, logger="storage.bootstrap"):
        again = open_database(settings)
    try:
        assert "does not match its anchors" in caplog.text and "removed" in caplog.text
        report = audit.verify_chain(again)
        assert not report.ok and "removed" in report.reason and len(report.breaks) == 1

        # The repair starts past every anchor; the loss stays on record, and verifies.
        repaired = audit.repair_chain(again, "(test operator)")
        assert repaired.repair_seq == reached + 1
        load_scan(again, alice, scan_id)
        report = audit.verify_chain(again)
        assert report.ok, report.reason
        [evidence] = report.breaks
        assert evidence.head_seq == reached and evidence.repaired_by == "(test operator)"
    finally:
        again.close()


def test_an_untouched_trail_verifies_and_starts_without_a_report(
    settings, database, make_user, caplog
) -> None:
    alice = make_user("alice")
    scan_id = save_sample_scan(database, alice)
    load_scan(database, alice, scan_id)
    database.close()
    with caplog.at_level(logging.WARNING):
        again = open_database(settings)
    try:
        assert [r for r in caplog.records if r.name.startswith("storage")] == []
        load_scan(again, alice, scan_id)
        report = audit.verify_chain(again)
        assert report.ok and report.breaks == ()
    finally:
        again.close()


def test_a_rolled_back_append_leaves_no_anchor_ahead_of_the_chain(database, make_user) -> None:
    """Anchors follow commits: an action that appended and then failed (a retried deadlock, a
    crash before the commit) must not look like events removed."""
    alice = make_user("alice")
    with pytest.raises(RuntimeError), database.transaction() as session:
        audit.append(session, database, "rolled_back", actor=alice)
        raise RuntimeError("the action failed after its event was appended")
    assert audit.verify_chain(database).ok
    accounts.logout(database, alice, None)  # takes the number the rolled-back event had
    assert audit.verify_chain(database).ok


def test_an_anchor_forged_without_the_master_key_counts_for_nothing(database, make_user) -> None:
    """Whoever can write the blob store but not read the master key cannot stop every audited
    action by planting an anchor one past the head."""
    alice = make_user("alice")
    head = _head_row(database)
    with database.transaction() as session:
        anchors = Anchors.of(database.blobs, database.keyring.current(session))
    forged = Anchors(database.blobs, b"k" * 32, anchors.folder)
    forged.write(Anchored(head["seq"] + 1, "f" * 64))
    accounts.logout(database, alice, None)
    assert audit.verify_chain(database).ok


def test_the_cut_stays_detected_across_a_master_key_rotation(database, make_user) -> None:
    alice = make_user("alice")
    rotate_master_key(database, crypto.new_master_key())
    snapshot = _head_row(database)
    save_sample_scan(database, alice)
    _put_back(database, snapshot)

    assert "removed" in (audit.verify_chain(database).reason or "")
    # Rotating again would start a new key's anchors from the cut head: refused.
    with pytest.raises(DecryptionError):
        rotate_master_key(database, crypto.new_master_key())
