"""Row versions: a sealed record rolled back to an older copy of itself does not open.

AES-GCM associated data already binds each ciphertext to its table, row id, owner and key
version (:mod:`storage.sealing`), so a value moved to another row fails. An older value *of
the same row* would still open, though, unless something newer than the row remembers which
copy is current. Three pieces do that:

1. Every seal of a row in one of the :data:`VERSIONED` tables takes a fresh **row version**
   from its owner's counter (never reused, even when SQLite reuses a deleted row's id), kept
   in ``seal_versions`` beside the row and bound into the ciphertext's associated data. An
   old ciphertext put back alone therefore fails to open.
2. Each owner has a **head** (``seal_heads``): the counter and a SHA-256 digest of the
   owner's live ``(table, row id, row version)`` triples, taken from the rows themselves
   (a row with no version row counts as version 0, the form of values sealed before
   versions existed). Putting back an old ciphertext *with* its old version changes the
   digest.
3. One **root** row (``seal_root``) holds an HMAC, keyed from the master key, over every
   owner's head. Putting back the owner's old head too fails the root MAC, and putting back
   the old root needs every owner's heads and rows as they were then.

The first sealed access of a transaction locks the root (the order is the key check, then
this root, then the audit head, as everywhere) and checks its MAC; each owner's digest is
checked against the head before that owner's first value opens. A transaction that sealed
or deleted an owner's records updates the head and the root just before it commits (a
``before_commit`` hook), so a crash leaves the old versions, heads and root, or the new ones.

What this does not detect: the whole set of sealed tables, heads and root put back together
to an earlier moment (a restored backup, or the latest change anywhere reverted along with
the two integrity rows). That needs state outside the database, out of scope here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Session, SQLModel, col, select

from storage import schema
from storage.evidence import IntegrityFailure

#: Purpose of the master subkey that signs the root (see :func:`storage.crypto.derive_subkey`).
ROOT_PURPOSE = "row-versions"
#: Audit action written once, when a database first gets its root; see :func:`create_root`.
STARTED_ACTION = "row_versions_started"

#: Tables whose rows hold sealed values, with the column naming the owner (whose key seals).
VERSIONED: dict[str, tuple[type[SQLModel], str]] = {
    "scans": (schema.Scan, "owner_id"),
    "results": (schema.Result, "owner_id"),
    "notes": (schema.Note, "owner_id"),
    "emergency_accesses": (schema.EmergencyAccess, "patient_id"),
    "profiles": (schema.Profile, "user_id"),
}

_INFO = "cxr_row_versions"
_ROLLED_BACK = (
    "This patient's stored records are not the versions the database last committed "
    "(an older copy was put back, or a record was removed or altered), so nothing was shown."
)

RowKey = tuple[str, int]


@dataclass(frozen=True)
class Head:
    """One owner's committed state: the last row version given and the digest of the rows."""

    counter: int
    digest: str


#: The state of an owner with no sealed record and no head row.
EMPTY = Head(0, hashlib.sha256().hexdigest())


@dataclass
class RowVersions:
    """One owner's row versions inside one transaction: what opens, and the next to give.

    Attributes:
        owner_id: The owner.
        counter: The last version given (the next seal takes ``counter + 1``).
        current: ``{(table, row id): version}`` of the owner's rows, as checked.
        sealed: Rows sealed in this transaction (their version rows are written at commit).
        changed: The owner's records changed (sealed, added or deleted) in this transaction.
    """

    owner_id: int
    counter: int = 0
    current: dict[RowKey, int] = field(default_factory=dict)
    sealed: set[RowKey] = field(default_factory=set)
    changed: bool = False

    def of(self, table: str, row_id: int) -> int | None:
        """The version a row's value must carry: 0 outside :data:`VERSIONED`, None if unknown."""
        if table not in VERSIONED:
            return 0
        return self.current.get((table, row_id))

    def take(self, table: str, row_id: int) -> int:
        """A fresh version for a new value of a row (0 outside :data:`VERSIONED`)."""
        if table not in VERSIONED:
            return 0
        self.counter += 1
        self.current[(table, row_id)] = self.counter
        self.sealed.add((table, row_id))
        self.changed = True
        return self.counter


@dataclass
class _Transaction:
    key: bytes
    heads: dict[int, Head]
    owners: dict[int, RowVersions] = field(default_factory=dict)


def checked(session: Session, root_key: bytes, owner_id: int) -> RowVersions:
    """The owner's row versions, checked against the head and the root (once per transaction).

    Args:
        session: The caller's open session (its transaction keeps the root locked).
        root_key: The master subkey for :data:`ROOT_PURPOSE`.
        owner_id: Whose records.

    Returns:
        The owner's versions; the same object for every call in this transaction.

    Raises:
        IntegrityFailure: The root is missing or its MAC fails, or the owner's rows are not
            the ones the head records (a rolled-back, removed or added record).
    """
    txn = session.info.get(_INFO)
    if txn is None:
        txn = _begin(session, root_key, owner_id)
        session.info[_INFO] = txn
    if owner_id in txn.owners:
        return txn.owners[owner_id]
    current = live_versions(session, owner_id)
    head = txn.heads.get(owner_id, EMPTY)
    if digest(current) != head.digest:
        raise IntegrityFailure(
            _ROLLED_BACK,
            owner_id=owner_id,
            table=None,
            row_id=None,
            reason="the owner's records do not match their committed row versions",
        )
    versions = RowVersions(owner_id, head.counter, current)
    txn.owners[owner_id] = versions
    return versions


def mark_changed(session: Session, root_key: bytes, owner_id: int) -> None:
    """Record that this transaction deletes some of the owner's records (head updated at commit).

    Raises:
        IntegrityFailure: See :func:`checked`; nothing is deleted from a failing owner.
    """
    checked(session, root_key, owner_id).changed = True


def live_versions(session: Session, owner_id: int) -> dict[RowKey, int]:
    """``{(table, row id): row version}`` of every sealed row the owner has now."""
    seal = schema.table_of(schema.SealVersion)
    found: dict[RowKey, int] = {}
    for name, (model, owner_column) in VERSIONED.items():
        table = schema.table_of(model)
        (key,) = table.primary_key.columns
        joined = table.outerjoin(
            seal,
            sa.and_(seal.c.table_name == name, seal.c.row_id == key, seal.c.owner_id == owner_id),
        )
        query = sa.select(key, seal.c.row_version).select_from(joined)
        for row_id, version in session.execute(query.where(table.c[owner_column] == owner_id)):
            found[(name, row_id)] = version or 0
    return found


def digest(versions: Mapping[RowKey, int]) -> str:
    """SHA-256 of an owner's ``(table, row id, version)`` triples in a canonical order."""
    hasher = hashlib.sha256()
    for (table, row_id), version in sorted(versions.items()):
        hasher.update(f"{table}|{row_id}|{version}\n".encode())
    return hasher.hexdigest()


def root_mac(root_key: bytes, heads: Mapping[int, Head]) -> str:
    """The HMAC over every owner's head that the root row stores."""
    body = "".join(f"{owner}|{h.counter}|{h.digest}\n" for owner, h in sorted(heads.items()))
    return hmac.new(root_key, body.encode(), hashlib.sha256).hexdigest()


def has_root(session: Session) -> bool:
    """Whether the database has its root row (every opened database has, see bootstrap)."""
    return session.get(schema.SealRoot, 1) is not None


def create_root(session: Session, root_key: bytes) -> int:
    """Give a database its heads and root, trusting the rows it holds now.

    Run once per database (:func:`storage.bootstrap.open_database`, which also writes
    :data:`STARTED_ACTION` to the audit trail so that a root deleted later is not silently
    made again). Rows sealed before this step keep version 0 until they are next sealed.

    Returns:
        How many owners got a head.
    """
    owners: set[int] = set()
    for model, owner_column in VERSIONED.values():
        table = schema.table_of(model)
        owners.update(session.execute(sa.select(table.c[owner_column]).distinct()).scalars())
    heads = {}
    for owner in sorted(owners):
        current = live_versions(session, owner)
        heads[owner] = Head(max(current.values(), default=0), digest(current))
        session.add(schema.SealHead(user_id=owner, **vars(heads[owner])))
    session.add(schema.SealRoot(id=1, mac=root_mac(root_key, heads)))
    session.flush()
    return len(heads)


def rekey_root(session: Session, old_key: bytes, new_key: bytes) -> None:
    """Re-sign the root with a key derived from a new master key (master-key rotation).

    Raises:
        IntegrityFailure: The root does not verify with the current key; re-signing it
            would launder whatever was changed.
    """
    root, heads = _locked_root(session)
    if root is None or not hmac.compare_digest(root.mac, root_mac(old_key, heads)):
        raise IntegrityFailure(
            "The record-version root does not verify; refusing to re-sign it.",
            owner_id=0,
            table=None,
            row_id=None,
            reason="record-version root invalid at master-key rotation",
        )
    root.mac = root_mac(new_key, heads)
    session.add(root)


def _begin(session: Session, root_key: bytes, owner_id: int) -> _Transaction:
    root, heads = _locked_root(session)
    if root is None or not hmac.compare_digest(root.mac, root_mac(root_key, heads)):
        raise IntegrityFailure(
            _ROLLED_BACK,
            owner_id=owner_id,
            table=None,
            row_id=None,
            reason="the record-version root is missing or its signature is invalid",
        )
    # Rows this transaction read before it held the root may predate a commit that was
    # waiting for it (PostgreSQL, read committed): read them again under the lock.
    session.flush()
    session.expire_all()
    return _Transaction(root_key, heads)


def _locked_root(session: Session) -> tuple[schema.SealRoot | None, dict[int, Head]]:
    root = session.exec(
        select(schema.SealRoot).where(schema.SealRoot.id == 1).with_for_update()
    ).first()
    heads = {
        row.user_id: Head(row.counter, row.digest) for row in session.exec(select(schema.SealHead))
    }
    return root, heads


@event.listens_for(Session, "before_commit")
def _commit_heads(session: Session) -> None:
    """Write the version rows, heads and root of owners whose records this transaction changed."""
    txn: _Transaction | None = session.info.pop(_INFO, None)
    changed = [v for v in (txn.owners.values() if txn else ()) if v.changed]
    if txn is None or not changed:
        return
    session.flush()
    for versions in changed:
        _write_versions(session, versions)
        current = live_versions(session, versions.owner_id)
        _drop_stale(session, versions.owner_id, current)
        head = Head(versions.counter, digest(current))
        txn.heads[versions.owner_id] = head
        row = session.get(schema.SealHead, versions.owner_id)
        if row is None:
            row = schema.SealHead(user_id=versions.owner_id)
        row.counter, row.digest = head.counter, head.digest
        session.add(row)
    root = session.get(schema.SealRoot, 1)
    if root is None:  # checked under lock when the transaction began; never absent here
        raise RuntimeError("The record-version root disappeared during a transaction.")
    root.mac = root_mac(txn.key, txn.heads)
    session.add(root)
    session.flush()


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_INFO, None)


def _write_versions(session: Session, versions: RowVersions) -> None:
    for table, row_id in sorted(versions.sealed):
        version = versions.current[(table, row_id)]
        row = session.get(schema.SealVersion, (table, row_id))
        if row is None:
            row = schema.SealVersion(
                table_name=table, row_id=row_id, owner_id=versions.owner_id, row_version=version
            )
        row.owner_id, row.row_version = versions.owner_id, version
        session.add(row)
    session.flush()


def _drop_stale(session: Session, owner_id: int, current: Mapping[RowKey, int]) -> None:
    # Version rows of deleted records (and of values sealed for rows never inserted).
    rows = session.exec(
        select(schema.SealVersion).where(col(schema.SealVersion.owner_id) == owner_id)
    )
    for row in rows.all():
        if (row.table_name, row.row_id) not in current:
            session.delete(row)
    session.flush()
