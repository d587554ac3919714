"""Append-only, hash-chained audit trail.

Each event stores ``hash = sha256(prev_hash || canonical JSON of the event)`` and a gap-free
sequence number, so editing, inserting or deleting an event in the middle breaks the chain.
Deleting events at the *end* leaves a valid shorter chain, so a separate head row records
the last sequence number and hash under an HMAC keyed from the master key: whoever can edit
the database but does not hold the master key can neither truncate the trail nor rebuild it
after an edit without the head MAC failing. The head row is also what appends lock
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises writers itself), so concurrent
appends form one chain.

A copy of an *old* head row still carries a valid MAC, so the head is also anchored outside
the database (:mod:`storage.audit_anchors`): after every commit that appended events, the
last one is written to the blob store, where the database's writers cannot take it back. A
head behind the highest anchor means events after it were removed.

Every append first checks the head against the last event, its MAC and the anchor one past
it, and fails closed: the action is refused with :class:`AuditTrailBroken`, and the break is
written to the separate ``audit_breaks`` table once the refused transaction has rolled back. Only
:func:`repair_chain` (``repair-audit --yes`` on the command line) lets appends continue: it
starts a new segment with an ``audit_repair`` event that records the old head, what was
found and who repaired it, and that the verifier accepts as the one justified gap.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from core.errors import UserError
from storage import crypto, policy, schema
from storage.actor import Actor
from storage.audit_anchors import Anchored, Anchors
from storage.crypto import DecryptionError
from storage.db import Database, RecordAfterRollback

HEAD_PURPOSE = "audit-head"
REPAIR_ACTION = "audit_repair"
_GENESIS = "0" * 64
#: How long one viewing's first read stands for its reruns (:func:`append_read`).
VIEWING_HOURS = 1
VIEWING_MAX_CHARS = 64


@dataclass(frozen=True)
class ChainState:
    """The head as stored next to the last event actually present, when they disagree."""

    reason: str
    head_seq: int
    head_hash: str
    last_seq: int
    last_hash: str


class AuditTrailBroken(UserError, RecordAfterRollback):
    """The audit trail failed its check, so the action that would extend it was refused."""

    code = "audit_broken"
    default_message = (
        "The audit trail failed its integrity check, so this action was refused; an "
        "administrator must check and repair the audit trail."
    )

    def __init__(self, state: ChainState) -> None:
        super().__init__()
        self.state = state

    def record(self, db: Database) -> None:
        """Record the break (once) in ``audit_breaks``, outside the refused transaction."""
        with db.transaction() as session:
            _record_break(session, self.state)


class NothingToRepair(UserError):
    """``repair_chain`` was asked to repair an intact head."""

    code = "audit_intact"
    default_message = "The audit trail's head is intact, so there is nothing to repair."


@dataclass(frozen=True)
class BreakInfo:
    """A recorded break of the chain (see :class:`schema.AuditBreak`)."""

    id: int
    detected_at: datetime
    reason: str
    head_seq: int
    last_seq: int
    repaired_at: datetime | None
    repaired_by: str | None
    repair_seq: int | None


@dataclass(frozen=True)
class ChainReport:
    """Outcome of :func:`verify_chain`."""

    ok: bool
    checked: int
    first_bad_id: int | None
    reason: str | None
    #: Every break ever recorded, repaired or not, oldest first.
    breaks: tuple[BreakInfo, ...] = field(default=())


@dataclass(frozen=True)
class AuditEntry:
    """One audit event as shown to admins and patients."""

    id: int
    seq: int
    ts: str
    actor_id: int | None
    actor_username: str | None
    action: str
    patient_id: int | None
    record_type: str | None
    record_id: int | None
    emergency: bool
    details: dict[str, Any]
    #: Done by the account itself in the first session after an admin reset its password
    #: (see :func:`storage.access_log.access_log`).
    after_reset: bool = False


def append(
    session: Session,
    db: Database,
    action: str,
    *,
    actor: Actor | None = None,
    actor_username: str | None = None,
    patient_id: int | None = None,
    record_type: str | None = None,
    record_id: int | None = None,
    emergency: bool = False,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one event inside the caller's transaction (so it commits with the action).

    Args:
        session: The caller's open session.
        db: Database handle (for the head MAC key).
        action: Short verb such as ``read_scan`` or ``login_failed``.
        actor: Who acted (``None`` for the system or an unknown user).
        actor_username: Name to record when there is no actor (failed logins).
        patient_id: Owner of the records concerned.
        record_type: Table of the record concerned.
        record_id: Id of the record concerned.
        emergency: Whether the access used emergency (break-glass) rights.
        details: Extra facts, never medical data.
    """
    # The master key is checked before the head is locked: the rotation takes the two locks
    # in this order too, so they cannot deadlock.
    keys = _Keys.of(session, db)
    head = _lock_head(session)
    state = _head_state(session, head, keys)
    if state is not None:
        raise AuditTrailBroken(state)
    _write(
        session,
        head,
        keys,
        schema.AuditEvent(
            seq=head.seq + 1,
            actor_id=actor.user_id if actor else None,
            actor_username=actor.username if actor else actor_username,
            action=action,
            patient_id=patient_id,
            record_type=record_type,
            record_id=record_id,
            emergency=emergency,
            details=_json(details or {}),
            prev_hash=head.hash,
            ts="",
            hash="",
        ),
    )


def append_read(
    session: Session,
    db: Database,
    action: str,
    *,
    actor: Actor,
    patient_id: int,
    viewing: str | None,
    record_type: str | None = None,
    record_id: int | None = None,
    emergency: bool = False,
    details: dict[str, Any] | None = None,
) -> bool:
    """Append a read event once per viewing (a page visit or a teleconsult), not per rerun.

    Without a viewing the read is always appended (:func:`append`). With one, it is appended
    at the viewing's first read of this patient, action, record and kind of access (emergency
    or not), with ``viewing`` in its details, and again once that is :data:`VIEWING_HOURS`
    old; a rerun finds the row in ``audit_viewings`` and writes nothing. The caller has
    checked the policy for this very call, as always.

    Args:
        session: The caller's open session.
        db: Database handle.
        action: The read, such as ``list_scans``.
        actor: Who reads.
        patient_id: Whose records.
        viewing: The viewing's id (at most 64 characters), or None.
        record_type: Table of the record read.
        record_id: Id of the record read (None for a list).
        emergency: Whether the read used emergency access.
        details: Extra facts, never medical data.

    Returns:
        Whether an event was appended.

    Raises:
        ValueError: The viewing id is empty or longer than 64 characters.
    """
    if viewing is not None:
        if not 0 < len(viewing) <= VIEWING_MAX_CHARS:
            raise ValueError("A viewing id has 1 to 64 characters.")
        key = {
            "actor_id": actor.user_id,
            "patient_id": patient_id,
            "action": action,
            "record_key": record_id or 0,
            "emergency": emergency,
            "viewing": viewing,
        }
        if not _first_read_of_viewing(session, key):
            return False
        details = {**(details or {}), "viewing": viewing}
    append(
        session,
        db,
        action,
        actor=actor,
        patient_id=patient_id,
        record_type=record_type,
        record_id=record_id,
        emergency=emergency,
        details=details,
    )
    return True


def _first_read_of_viewing(session: Session, key: dict[str, Any]) -> bool:
    """Claim ``key`` for this viewing; False when a rerun finds it claimed (no write then).

    The claim is an insert that does nothing on conflict, so two concurrent reruns of one
    viewing append one event: on PostgreSQL the second waits for the first's commit.
    """
    table = schema.table_of(schema.AuditViewing)
    now = schema.utcnow()
    cutoff = now - timedelta(hours=VIEWING_HOURS)
    primary = [table.c[name] == value for name, value in key.items()]
    first_at = session.connection().execute(sa.select(table.c.first_at).where(*primary)).first()
    if first_at is not None and _aware(first_at[0]) > cutoff:
        return False
    # This actor's viewings that are over (this one included, when it is), then the claim.
    session.connection().execute(
        sa.delete(table).where(table.c.actor_id == key["actor_id"], table.c.first_at <= cutoff)
    )
    dialect = session.connection().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    claimed = session.connection().execute(
        insert(table)
        .values(**key, first_at=now)
        .on_conflict_do_nothing()
        .returning(table.c.first_at)
    )
    return claimed.first() is not None


def _aware(value: datetime) -> datetime:
    # SQLite returns naive datetimes; every stored time is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def repair_chain(db: Database, repaired_by: str) -> BreakInfo:
    """Start a new segment after a broken head, keeping the evidence of the break.

    The ``audit_repair`` event links to the last event still present, takes the next
    sequence number after the old head, that event and the highest anchor (so the new
    segment's anchors never meet the old ones), and records the old head (the anchored one
    when the database's head was behind it), what was found and who repaired; the break row
    is marked repaired. Events lost before the repair stay lost: the repair makes the loss
    visible for good, it does not hide it.

    Args:
        db: Database handle.
        repaired_by: Who repairs, as written in the chain and the break record.

    Returns:
        The repaired break.

    Raises:
        NothingToRepair: The head agrees with the last event and its MAC.
    """
    with db.transaction() as session:
        keys = _Keys.of(session, db)
        head = _lock_head(session)
        state = _head_state(session, head, keys)
        if state is None:
            raise NothingToRepair()
        row = _record_break(session, state)
        event = schema.AuditEvent(
            seq=max(state.head_seq, state.last_seq) + 1,
            actor_username=repaired_by,
            action=REPAIR_ACTION,
            ts="",
            hash="",
            details=_json(
                {
                    "break_id": row.id,
                    "reason": state.reason,
                    "old_head_seq": state.head_seq,
                    "old_head_hash": state.head_hash,
                    "found_seq": state.last_seq,
                    "found_hash": state.last_hash,
                }
            ),
            prev_hash=state.last_hash,
        )
        _write(session, head, keys, event)
        row.repaired_at, row.repaired_by, row.repair_seq = schema.utcnow(), repaired_by, event.seq
        session.add(row)
        return _break_info(row)


@dataclass(frozen=True)
class _Keys:
    """What the master key gives the chain in one transaction: the head's MAC key, the anchors."""

    head: bytes
    anchors: Anchors

    @classmethod
    def of(cls, session: Session, db: Database) -> _Keys:
        master = db.keyring.current(session)
        return cls(crypto.derive_subkey(master, HEAD_PURPOSE), Anchors.of(db.blobs, master))


def _lock_head(session: Session) -> schema.AuditHead:
    return session.exec(
        select(schema.AuditHead).where(schema.AuditHead.id == 1).with_for_update()
    ).one()


def _write(session: Session, head: schema.AuditHead, keys: _Keys, event: schema.AuditEvent) -> None:
    event.ts = schema.utcnow().isoformat(timespec="microseconds")
    event.hash = _event_hash(event)
    session.add(event)
    head.seq, head.hash = event.seq, event.hash
    head.mac = _head_mac(keys.head, head.seq, head.hash)
    session.add(head)
    session.flush()
    keys.anchors.after_commit(session, Anchored(event.seq, event.hash))


def _last_event(session: Session) -> tuple[int, str]:
    last = session.exec(
        select(schema.AuditEvent.seq, schema.AuditEvent.hash)
        .order_by(col(schema.AuditEvent.seq).desc())
        .limit(1)
    ).first()
    return (last[0], last[1]) if last else (0, _GENESIS)


def _head_state(session: Session, head: schema.AuditHead, keys: _Keys) -> ChainState | None:
    # The cheap check every append makes: the head's MAC, the last event present being the
    # one the head names, unaltered, and no anchor one past it (a single read; the full
    # listing only once that one is found). A full walk is verify_chain's job.
    last = session.exec(
        select(schema.AuditEvent).order_by(col(schema.AuditEvent.seq).desc()).limit(1)
    ).first()
    last_seq, last_hash = (last.seq, last.hash) if last else (0, _GENESIS)
    if not hmac.compare_digest(head.mac, _head_mac(keys.head, head.seq, head.hash)):
        reason = "chain head signature is invalid"
    elif (last_seq, last_hash) != (head.seq, head.hash):
        reason = f"chain head expects event {head.seq} but the last event is {last_seq}"
    elif last is not None and not hmac.compare_digest(last.hash, _event_hash(last)):
        reason = f"event {last_seq} was altered"
    elif keys.anchors.read(head.seq + 1) is not None:
        return _anchor_state(session, head, keys.anchors)
    else:
        return None
    return ChainState(reason, head.seq, head.hash, last_seq, last_hash)


def _anchor_state(session: Session, head: schema.AuditHead, anchors: Anchors) -> ChainState | None:
    """Whether the head is behind the highest anchor, or its own anchor names another event.

    The caller holds the head lock, so no anchor can name an event committed after the
    head was read.
    """
    anchored = anchors.highest_from(head.seq)
    if anchored is None:
        return None
    last_seq, last_hash = _last_event(session)
    if anchored.seq > head.seq:
        reason = _cut_reason(head.seq, anchored.seq)
    elif anchored.hash != head.hash:
        reason = _replaced_reason(head.seq)
    else:
        return None
    return ChainState(reason, anchored.seq, anchored.hash, last_seq, last_hash)


def _cut_reason(head_seq: int, anchored_seq: int) -> str:
    return (
        f"the chain ends at event {head_seq} but event {anchored_seq} is anchored outside the "
        f"database: events after {head_seq} were removed and an older head was put back"
    )


def _replaced_reason(seq: int) -> str:
    return (
        f"event {seq} is not the event anchored outside the database under that number: "
        "events were removed and the chain continued without them"
    )


def check_anchors(db: Database) -> ChainState | None:
    """Compare the head with its anchors at start-up, and anchor a head that has none.

    A cut is recorded in ``audit_breaks`` (the admin page and ``verify-audit`` list it)
    and returned for the caller to report; an append that meets an anchor one past the head
    is refused until the repair. A head without its own anchor (a database from before
    anchors, a crash just after a commit, a master-key rotation) gets one after this
    transaction commits.

    Args:
        db: Database handle.

    Returns:
        The cut found, or ``None``.
    """
    with db.transaction() as session:
        keys = _Keys.of(session, db)
        head = _lock_head(session)
        state = _anchor_state(session, head, keys.anchors)
        if state is not None:
            _record_break(session, state)
        elif head.seq and keys.anchors.read(head.seq) is None:
            keys.anchors.after_commit(session, Anchored(head.seq, head.hash))
        return state


def _record_break(session: Session, state: ChainState) -> schema.AuditBreak:
    known = session.exec(
        select(schema.AuditBreak)
        .where(col(schema.AuditBreak.repaired_at).is_(None))
        .where(schema.AuditBreak.head_seq == state.head_seq)
        .where(schema.AuditBreak.last_seq == state.last_seq)
    ).first()
    if known is not None:
        return known
    row = schema.AuditBreak(
        reason=state.reason,
        head_seq=state.head_seq,
        head_hash=state.head_hash,
        last_seq=state.last_seq,
        last_hash=state.last_hash,
    )
    session.add(row)
    session.flush()
    return row


def _break_info(row: schema.AuditBreak) -> BreakInfo:
    return BreakInfo(
        schema.stored_id(row.id),
        row.detected_at,
        row.reason,
        row.head_seq,
        row.last_seq,
        row.repaired_at,
        row.repaired_by,
        row.repair_seq,
    )


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def ensure_head(db: Database) -> None:
    """Create the chain head row of a fresh database."""
    with db.transaction() as session:
        if session.get(schema.AuditHead, 1) is None:
            key = db.keyring.subkey(session, HEAD_PURPOSE)
            session.add(
                schema.AuditHead(id=1, seq=0, hash=_GENESIS, mac=_head_mac(key, 0, _GENESIS))
            )


def rekey_head(session: Session, db: Database, new_master: bytes) -> None:
    """Re-MAC the head with a key derived from a new master key (master key rotation).

    The head is checked against the current key's anchors first, and anchored under the
    new key once the rotation commits: the new key's anchors start from a checked head.

    The caller must already hold the ``key_check`` row exclusively (see
    :func:`storage.bootstrap.rotate_master_key`), so locking the head here cannot deadlock.

    Raises:
        crypto.DecryptionError: The current head MAC does not verify, or the head is behind
            its anchors, i.e. the trail was truncated or rebuilt; rotating would launder that.
    """
    keys = _Keys.of(session, db)
    head = _lock_head(session)
    if not hmac.compare_digest(head.mac, _head_mac(keys.head, head.seq, head.hash)):
        raise DecryptionError("The audit chain head does not verify; refusing to re-key it.")
    state = _anchor_state(session, head, keys.anchors)
    if state is not None:
        raise DecryptionError(f"The audit trail was cut ({state.reason}); refusing to re-key it.")
    head.mac = _head_mac(crypto.derive_subkey(new_master, HEAD_PURPOSE), head.seq, head.hash)
    session.add(head)
    if head.seq:
        Anchors.of(db.blobs, new_master).after_commit(session, Anchored(head.seq, head.hash))


def verify_chain(db: Database, actor: Actor | None = None) -> ChainReport:
    """Check every event, the MAC-protected head and the head's anchors outside the database.

    Args:
        db: Database handle.
        actor: Admin asking (the check is then audited); ``None`` for the command line.

    Returns:
        A report naming the first bad event, if any.

    Raises:
        policy.AccessDenied: ``actor`` is not an active admin.
    """
    if actor is not None:
        policy.require_role(actor, schema.Role.ADMIN)
    with db.transaction() as session:
        if actor is not None:
            policy.ensure_active(session, actor)
        report, ahead = _verify(session, db)
        if not report.ok:
            # Recorded, not audited: an append would be refused on a broken chain.
            head = session.get(schema.AuditHead, 1)
            # A head behind its anchors is recorded as the anchor names it, as the
            # start-up check and the appends record it.
            head_seq, head_hash = (
                (ahead.seq, ahead.hash)
                if ahead is not None
                else (head.seq if head else 0, head.hash if head else _GENESIS)
            )
            _record_break(
                session,
                ChainState(
                    report.reason or "chain does not verify",
                    head_seq,
                    head_hash,
                    *_last_event(session),
                ),
            )
        elif actor is not None:
            append(
                session,
                db,
                "verify_audit",
                actor=actor,
                details={"ok": report.ok, "checked": report.checked},
            )
        breaks = session.exec(select(schema.AuditBreak).order_by(col(schema.AuditBreak.id))).all()
        return replace(report, breaks=tuple(_break_info(row) for row in breaks))


def _verify(session: Session, db: Database) -> tuple[ChainReport, Anchored | None]:
    """The report, and the anchor beyond the head when that is what failed."""
    keys = _Keys.of(session, db)
    # Listed before the events and the head are read: an anchor only follows its commit,
    # so every anchor listed names an event those later reads include.
    start = session.exec(select(schema.AuditHead.seq)).first() or 0
    anchored = keys.anchors.highest_from(start)
    anchored_event: schema.AuditEvent | None = None
    prev_hash, expected_seq, checked = _GENESIS, 1, 0
    events = session.exec(select(schema.AuditEvent).order_by(col(schema.AuditEvent.seq)))
    for event in events:
        if event.seq != expected_seq and not _documents_gap(event, expected_seq - 1):
            reason = f"sequence jumps from {expected_seq - 1} to {event.seq} (events removed)"
            return ChainReport(False, checked, event.id, reason), None
        if event.prev_hash != prev_hash:
            return ChainReport(False, checked, event.id, "link to previous event broken"), None
        if not hmac.compare_digest(event.hash, _event_hash(event)):
            return ChainReport(False, checked, event.id, "event content was altered"), None
        if anchored is not None and event.seq == anchored.seq:
            anchored_event = event
        prev_hash, expected_seq, checked = event.hash, event.seq + 1, checked + 1
    head = session.get(schema.AuditHead, 1)
    if head is None:
        return ChainReport(False, checked, None, "chain head is missing"), None
    if not hmac.compare_digest(head.mac, _head_mac(keys.head, head.seq, head.hash)):
        return ChainReport(False, checked, None, "chain head signature is invalid"), None
    if head.seq != expected_seq - 1 or head.hash != prev_hash:
        reason = f"chain head expects event {head.seq} but the last event is {expected_seq - 1}"
        return ChainReport(False, checked, None, reason), None
    if anchored is not None and anchored.seq > head.seq:
        return ChainReport(False, checked, None, _cut_reason(head.seq, anchored.seq)), anchored
    # An anchored event missing from the walk lies in a gap a repair documented.
    if anchored is not None and anchored_event is not None and anchored_event.hash != anchored.hash:
        reason = _replaced_reason(anchored_event.seq)
        return ChainReport(False, checked, anchored_event.id, reason), None
    return ChainReport(True, checked, None, None), None


def _documents_gap(event: schema.AuditEvent, last_seq: int) -> bool:
    # A repair event may follow a gap only if it names exactly the event before it; its own
    # hash and the head MAC (which a repair needs the master key for) protect that claim.
    return event.action == REPAIR_ACTION and json.loads(event.details).get("found_seq") == last_seq


def list_events(db: Database, admin: Actor, limit: int = 500) -> list[AuditEntry]:
    """The most recent events, newest first (admins only; the viewing is itself audited).

    Args:
        db: Database handle.
        admin: Acting admin.
        limit: Maximum number of events.

    Returns:
        Events, newest first.

    Raises:
        policy.AccessDenied: ``admin`` is not an active admin.
    """
    with db.transaction() as session:
        policy.require_admin(session, admin)
        rows = session.exec(
            select(schema.AuditEvent).order_by(col(schema.AuditEvent.seq).desc()).limit(limit)
        ).all()
        append(session, db, "view_audit", actor=admin, details={"count": len(rows)})
        return [to_entry(row) for row in rows]


def to_entry(row: schema.AuditEvent) -> AuditEntry:
    """An event as listed to admins and patients."""
    return AuditEntry(
        id=schema.stored_id(row.id),
        seq=row.seq,
        ts=row.ts,
        actor_id=row.actor_id,
        actor_username=row.actor_username,
        action=row.action,
        patient_id=row.patient_id,
        record_type=row.record_type,
        record_id=row.record_id,
        emergency=bool(row.emergency),
        details=json.loads(row.details),
    )


def _canonical(event: schema.AuditEvent) -> bytes:
    body = {
        "seq": event.seq,
        "ts": event.ts,
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "action": event.action,
        "patient_id": event.patient_id,
        "record_type": event.record_type,
        "record_id": event.record_id,
        "emergency": bool(event.emergency),
        "details": json.loads(event.details),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _event_hash(event: schema.AuditEvent) -> str:
    return hashlib.sha256(event.prev_hash.encode() + _canonical(event)).hexdigest()


def _head_mac(key: bytes, seq: int, head_hash: str) -> str:
    return hmac.new(key, f"{seq}|{head_hash}".encode(), hashlib.sha256).hexdigest()
