"""Append-only, hash-chained audit trail.

Each event stores ``hash = sha256(prev_hash || canonical JSON of the event)`` and a gap-free
sequence number, so editing, inserting or deleting an event in the middle breaks the chain.
Deleting events at the *end* leaves a valid shorter chain, so a separate head row records
the last sequence number and hash under an HMAC keyed from the master key: whoever can edit
the database but does not hold the master key can neither truncate the trail nor rebuild it
after an edit without the head MAC failing. The head row is also what appends lock
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises writers itself), so concurrent
appends form one chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from storage import policy, schema
from storage.actor import Actor
from storage.crypto import DecryptionError
from storage.db import Database

HEAD_PURPOSE = "audit-head"
_GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainReport:
    """Outcome of :func:`verify_chain`."""

    ok: bool
    checked: int
    first_bad_id: int | None
    reason: str | None


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
    head = session.exec(
        select(schema.AuditHead).where(schema.AuditHead.id == 1).with_for_update()
    ).one()
    event = schema.AuditEvent(
        seq=head.seq + 1,
        ts=schema.utcnow().isoformat(timespec="microseconds"),
        actor_id=actor.user_id if actor else None,
        actor_username=actor.username if actor else actor_username,
        action=action,
        patient_id=patient_id,
        record_type=record_type,
        record_id=record_id,
        emergency=emergency,
        details=json.dumps(details or {}, sort_keys=True, separators=(",", ":")),
        prev_hash=head.hash,
        hash="",
    )
    event.hash = _event_hash(event)
    session.add(event)
    head.seq, head.hash = event.seq, event.hash
    head.mac = _current_head_mac(db, head)
    session.add(head)
    session.flush()


def ensure_head(db: Database) -> None:
    """Create the chain head row of a fresh database."""
    with db.transaction() as session:
        if session.get(schema.AuditHead, 1) is None:
            key = db.keyring.subkey(HEAD_PURPOSE)
            session.add(
                schema.AuditHead(id=1, seq=0, hash=_GENESIS, mac=_head_mac(key, 0, _GENESIS))
            )


def rekey_head(session: Session, db: Database, new_head_key: bytes) -> None:
    """Re-MAC the head with a key derived from a new master key (master key rotation).

    Raises:
        crypto.DecryptionError: The current head MAC does not verify, i.e. the trail was
            truncated or rebuilt; rotating would launder that.
    """
    head = session.exec(
        select(schema.AuditHead).where(schema.AuditHead.id == 1).with_for_update()
    ).one()
    if not hmac.compare_digest(head.mac, _current_head_mac(db, head)):
        raise DecryptionError("The audit chain head does not verify; refusing to re-key it.")
    head.mac = _head_mac(new_head_key, head.seq, head.hash)
    session.add(head)


def verify_chain(db: Database, actor: Actor | None = None) -> ChainReport:
    """Check every event and the MAC-protected head.

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
        report = _verify(session, db)
        if actor is not None:
            append(
                session,
                db,
                "verify_audit",
                actor=actor,
                details={"ok": report.ok, "checked": report.checked},
            )
    return report


def _verify(session: Session, db: Database) -> ChainReport:
    prev_hash, expected_seq, checked = _GENESIS, 1, 0
    events = session.exec(select(schema.AuditEvent).order_by(schema.AuditEvent.seq))
    for event in events:
        if event.seq != expected_seq:
            reason = f"sequence jumps from {expected_seq - 1} to {event.seq} (events removed)"
            return ChainReport(False, checked, event.id, reason)
        if event.prev_hash != prev_hash:
            return ChainReport(False, checked, event.id, "link to previous event broken")
        if not hmac.compare_digest(event.hash, _event_hash(event)):
            return ChainReport(False, checked, event.id, "event content was altered")
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    head = session.get(schema.AuditHead, 1)
    if head is None:
        return ChainReport(False, checked, None, "chain head is missing")
    if not hmac.compare_digest(head.mac, _current_head_mac(db, head)):
        return ChainReport(False, checked, None, "chain head signature is invalid")
    if head.seq != checked or head.hash != prev_hash:
        reason = f"chain head expects {head.seq} events but {checked} are present"
        return ChainReport(False, checked, None, reason)
    return ChainReport(True, checked, None, None)


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
            select(schema.AuditEvent).order_by(schema.AuditEvent.seq.desc()).limit(limit)
        ).all()
        append(session, db, "view_audit", actor=admin, details={"count": len(rows)})
        return [_entry(row) for row in rows]


def access_log(db: Database, actor: Actor, patient_id: int) -> list[AuditEntry]:
    """Who else read or changed a patient's records, newest first ("who saw my scans").

    Args:
        db: Database handle.
        actor: The patient asking.
        patient_id: Must be the actor's own id.

    Returns:
        Events by other users concerning the patient, emergency accesses included.

    Raises:
        policy.AccessDenied: The actor is not that patient, or the account is disabled.
    """
    policy.require_own_records(actor, patient_id)
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        rows = session.exec(
            select(schema.AuditEvent)
            .where(schema.AuditEvent.patient_id == patient_id)
            .where(schema.AuditEvent.actor_id != patient_id)
            .order_by(schema.AuditEvent.seq.desc())
        ).all()
        append(session, db, "view_access_log", actor=actor, patient_id=patient_id)
        return [_entry(row) for row in rows]


def record_session_start(db: Database, actor: Actor, patient_id: int) -> None:
    """Audit the start of a teleconsult; requires current read access to the patient.

    Raises:
        policy.AccessDenied: The actor may not read this patient's records.
    """
    with db.transaction() as session:
        access = policy.check_read(session, actor, patient_id)
        append(
            session,
            db,
            "teleconsult_start",
            actor=actor,
            patient_id=patient_id,
            record_type="teleconsult",
            emergency=access.emergency,
            details=access.audit_details(),
        )


def record_session_end(db: Database, actor: Actor, patient_id: int, minutes: float) -> None:
    """Audit the end of a teleconsult (allowed even if access expired meanwhile)."""
    with db.transaction() as session:
        append(
            session,
            db,
            "teleconsult_end",
            actor=actor,
            patient_id=patient_id,
            record_type="teleconsult",
            details={"minutes": round(float(minutes), 1)},
        )


def _entry(row: schema.AuditEvent) -> AuditEntry:
    return AuditEntry(
        id=row.id,
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


def _current_head_mac(db: Database, head: schema.AuditHead) -> str:
    return _head_mac(db.keyring.subkey(HEAD_PURPOSE), head.seq, head.hash)
