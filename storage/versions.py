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
3. A **tree** of HMACs, keyed from the master key, covers every head: each inner node
   (``seal_nodes``) signs up to :data:`FANOUT` children, grouped by owner id, and the one
   **root** row (``seal_root``) signs the top level. Putting back the owner's old head too
   fails the root, and putting back the old root needs every owner's heads and rows as they
   were then.

Checking one owner reads that owner's rows, the heads of the owners whose ids share its
first :data:`FANOUT` block, the sibling nodes on its way up and the root, in one statement:
about 70 rows at 100,000 owners, against every head before. So a check costs the same
whatever the number of patients.

Locks (PostgreSQL; SQLite runs one write transaction at a time): the owner's ``users`` row
is the owner's lock. A reading transaction holds it shared (``FOR SHARE``), so reads of the
same patient run side by side and never wait for other patients; a transaction that
changes the owner's records holds it exclusively (``FOR NO KEY UPDATE``) from its check to
its commit, which is what keeps two writers from giving the same row version twice. Callers
that will write say so (``for_update``); a sealer opened for reading that seals anyway takes
the exclusive lock at commit (correct, but two such transactions of one owner can deadlock,
which PostgreSQL breaks by failing one). The root is locked only at commit, by writers,
to update the tree. So the order is the key check, the owners, the audit head, then the
root.

Each owner's head and path are checked before that owner's first value opens. A transaction
that sealed or deleted an owner's records checks the path again under the root's lock and
then updates the versions, the head, the path and the root just before it commits (a
``before_commit`` hook), so a crash leaves the old ones or the new ones.

A root signed in migration step 7's form (one MAC over every head) is checked in that form
once and replaced by the tree, by the first transaction that opens a sealed record.

What this does not detect: the whole set of sealed tables, heads, nodes and root put back
together to an earlier moment (a restored backup, or the latest change anywhere reverted
along with the integrity rows). That needs state outside the database, out of scope here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Session, SQLModel, col, select

from storage import schema
from storage.evidence import IntegrityFailure

#: Purpose of the master subkey that signs the tree (see :func:`storage.crypto.derive_subkey`).
ROOT_PURPOSE = "row-versions"
#: Audit action written once, when a database first gets its root; see :func:`create_root`.
STARTED_ACTION = "row_versions_started"

#: Children per inner node of the tree: heads of owners ``16k`` to ``16k + 15``, and so on up.
FANOUT = 16
#: Levels of inner nodes; the root signs every node of the top level (one per 16**5 owners).
TOP = 5
#: ``seal_root.scheme``: one MAC over every head (migration step 7), or the tree.
FLAT, TREE = 1, 2

#: Tables whose rows hold sealed values, with the column naming the owner (whose key seals).
VERSIONED: dict[str, tuple[type[SQLModel], str]] = {
    "scans": (schema.Scan, "owner_id"),
    "results": (schema.Result, "owner_id"),
    "notes": (schema.Note, "owner_id"),
    "emergency_accesses": (schema.EmergencyAccess, "patient_id"),
    "profiles": (schema.Profile, "user_id"),
}

_INFO = "cxr_row_versions"
_ROOT_LEVEL = TOP + 1
_OWNER_COLUMN: dict[type, str] = dict(VERSIONED.values())
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
        exclusive: This transaction holds the owner's lock exclusively (see the module).
    """

    owner_id: int
    counter: int = 0
    current: dict[RowKey, int] = field(default_factory=dict)
    sealed: set[RowKey] = field(default_factory=set)
    changed: bool = False
    exclusive: bool = False

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
    owners: dict[int, RowVersions] = field(default_factory=dict)


@dataclass
class _Path:
    """What one statement read for one owner's check: its block's heads, siblings and root.

    Attributes:
        heads: ``{owner id: head}`` of the owners in the checked owner's first block.
        nodes: ``{level: {position: mac}}`` of the stored nodes on the way up, siblings and
            the checked owner's own nodes alike.
        root: The root's MAC, or None when the row is missing.
        scheme: The root's :data:`FLAT` or :data:`TREE`.
    """

    heads: dict[int, Head]
    nodes: dict[int, dict[int, str]]
    root: str | None
    scheme: int


def checked(
    session: Session, root_key: bytes, owner_id: int, *, for_update: bool = False
) -> RowVersions:
    """The owner's row versions, checked against their head and the tree (once per transaction).

    Args:
        session: The caller's open session (its transaction keeps the owner locked).
        root_key: The master subkey for :data:`ROOT_PURPOSE`.
        owner_id: Whose records.
        for_update: This transaction will seal or delete some of the owner's records, so it
            locks the owner exclusively now rather than shared.

    Returns:
        The owner's versions; the same object for every call in this transaction.

    Raises:
        IntegrityFailure: The root is missing, the owner's head and path do not sign to it,
            or the owner's rows are not the ones the head records (a rolled-back, removed or
            added record).
    """
    txn = session.info.get(_INFO)
    if txn is None:
        txn = _Transaction(root_key)
        session.info[_INFO] = txn
    versions = txn.owners.get(owner_id)
    if versions is not None:
        if for_update and not versions.exclusive:
            _lock_owner(session, owner_id, exclusive=True)
            versions.exclusive = True
        return versions
    _lock_owner(session, owner_id, exclusive=for_update)
    _expire_owner(session, owner_id)
    path = _read_path(session, owner_id)
    if path.scheme == FLAT:
        _replace_flat_root(session, root_key, owner_id)
        path = _read_path(session, owner_id)
    head = path.heads.get(owner_id)
    _verify(root_key, owner_id, head, path)
    current = live_versions(session, owner_id)
    if digest(current) != (head or EMPTY).digest:
        raise IntegrityFailure(
            _ROLLED_BACK,
            owner_id=owner_id,
            table=None,
            row_id=None,
            reason="the owner's records do not match their committed row versions",
        )
    versions = RowVersions(owner_id, (head or EMPTY).counter, current, exclusive=for_update)
    txn.owners[owner_id] = versions
    return versions


def mark_changed(session: Session, root_key: bytes, owner_id: int) -> None:
    """Record that this transaction deletes some of the owner's records (head updated at commit).

    Raises:
        IntegrityFailure: See :func:`checked`; nothing is deleted from a failing owner.
    """
    checked(session, root_key, owner_id, for_update=True).changed = True


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


def has_root(session: Session) -> bool:
    """Whether the database has its root row (every opened database has, see bootstrap)."""
    return session.get(schema.SealRoot, 1) is not None


def create_root(session: Session, root_key: bytes) -> int:
    """Give a database its heads, tree and root, trusting the rows it holds now.

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
    for owner in sorted(owners):
        current = live_versions(session, owner)
        session.add(
            schema.SealHead(
                user_id=owner, counter=max(current.values(), default=0), digest=digest(current)
            )
        )
    session.add(schema.SealRoot(id=1, mac="", scheme=TREE))
    session.flush()
    sign_heads(session, root_key)
    return len(owners)


def sign_heads(session: Session, root_key: bytes) -> None:
    """Build the whole tree over the heads as they are stored, and sign the root with it.

    Trusts the heads: callers check them first (the old root's MAC), or made them. Reads
    every head, so it is for creating and re-signing, never for an ordinary transaction.

    Args:
        session: An open session whose root row exists (it is locked here).
        root_key: The master subkey for :data:`ROOT_PURPOSE` to sign with.
    """
    _lock_root(session)
    nodes, root = _tree(root_key, _all_heads(session))
    table = schema.table_of(schema.SealNode)
    session.execute(table.delete())
    rows = [
        {"level": level, "position": position, "mac": mac}
        for level, level_nodes in nodes.items()
        for position, mac in level_nodes.items()
    ]
    if rows:
        session.execute(table.insert(), rows)
    _store_root(session, root)


def rekey_root(session: Session, old_key: bytes, new_key: bytes) -> None:
    """Re-sign the tree with a key derived from a new master key (master-key rotation).

    Raises:
        IntegrityFailure: The root does not verify with the current key over every head;
            re-signing it would launder whatever was changed.
    """
    root = _lock_root(session)
    heads = _all_heads(session)
    if root is None or not hmac.compare_digest(root.mac, _root_of(old_key, heads, root.scheme)):
        raise IntegrityFailure(
            "The record-version root does not verify; refusing to re-sign it.",
            owner_id=0,
            table=None,
            row_id=None,
            reason="record-version root invalid at master-key rotation",
        )
    sign_heads(session, new_key)


@event.listens_for(Session, "before_commit")
def _commit_heads(session: Session) -> None:
    """Write the version rows, heads, paths and root of owners whose records changed."""
    txn: _Transaction | None = session.info.pop(_INFO, None)
    changed = sorted(
        (v for v in (txn.owners.values() if txn else ()) if v.changed), key=lambda v: v.owner_id
    )
    if txn is None or not changed:
        return
    session.flush()
    for versions in changed:
        if not versions.exclusive:
            _lock_owner(session, versions.owner_id, exclusive=True)
    if _lock_root(session) is None:
        raise _root_failure(changed[0].owner_id, "the record-version root is missing")
    for versions in changed:
        owner_id = versions.owner_id
        # Read under the root's lock: the siblings as the last writer committed them.
        path = _read_path(session, owner_id)
        old = path.heads.get(owner_id)
        _verify(txn.key, owner_id, old, path)
        _write_versions(session, versions)
        current = live_versions(session, owner_id)
        _drop_stale(session, owner_id, current)
        head = Head(versions.counter, digest(current))
        heads = schema.table_of(schema.SealHead)
        values = {"counter": head.counter, "digest": head.digest}
        if old is None:
            session.execute(heads.insert().values(user_id=owner_id, **values))
        else:
            session.execute(heads.update().where(heads.c.user_id == owner_id).values(**values))
        nodes, root = _climb(txn.key, owner_id, head, path)
        _store_path(session, path, nodes)
        _store_root(session, root)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_INFO, None)


def _lock_owner(session: Session, owner_id: int, *, exclusive: bool) -> None:
    users = schema.table_of(schema.User)
    query = sa.select(users.c.id).where(users.c.id == owner_id)
    # FOR NO KEY UPDATE, not FOR UPDATE: rows that merely reference the user (audit events,
    # grants) take a key-share lock for their foreign key and need not wait for a writer.
    session.execute(
        query.with_for_update(key_share=True) if exclusive else query.with_for_update(read=True)
    )


def _expire_owner(session: Session, owner_id: int) -> None:
    # Rows this transaction read before it held the owner's lock may predate a commit that
    # was waiting for it (PostgreSQL, read committed): they are read again on next use.
    session.flush()
    for instance in list(session.identity_map.values()):
        column = _OWNER_COLUMN.get(type(instance))
        if column is not None and sa.inspect(instance).dict.get(column) == owner_id:
            session.expire(instance)


def _lock_root(session: Session) -> schema.SealRoot | None:
    query = select(schema.SealRoot).where(schema.SealRoot.id == 1).with_for_update()
    return session.exec(query.execution_options(populate_existing=True)).first()


def _store_root(session: Session, mac: str) -> None:
    root = schema.table_of(schema.SealRoot)
    session.execute(root.update().where(root.c.id == 1).values(mac=mac, scheme=TREE))


def _read_path(session: Session, owner_id: int) -> _Path:
    """One owner's block of heads, the nodes on its way up and the root, in one statement.

    One statement sees one committed state on PostgreSQL too, so a writer committing
    elsewhere in the tree meanwhile cannot make the path look inconsistent.
    """
    heads = schema.table_of(schema.SealHead)
    nodes = schema.table_of(schema.SealNode)
    root = schema.table_of(schema.SealRoot)
    first = owner_id // FANOUT * FANOUT
    zero = sa.literal_column("0", sa.Integer)
    blocks = [
        sa.and_(nodes.c.level == level, nodes.c.position.between(start, start + FANOUT - 1))
        for level in range(1, TOP)
        for start in [owner_id // FANOUT ** (level + 1) * FANOUT]
    ]
    query = sa.union_all(
        sa.select(
            zero.label("level"),
            heads.c.user_id.label("position"),
            heads.c.counter.label("number"),
            heads.c.digest.label("text"),
        ).where(heads.c.user_id.between(first, first + FANOUT - 1)),
        sa.select(nodes.c.level, nodes.c.position, zero, nodes.c.mac).where(
            sa.or_(*blocks, nodes.c.level == TOP)
        ),
        sa.select(
            sa.literal_column(str(_ROOT_LEVEL), sa.Integer), zero, root.c.scheme, root.c.mac
        ).where(root.c.id == 1),
    )
    path = _Path({}, defaultdict(dict), None, TREE)
    for level, position, number, text in session.execute(query):
        if level == 0:
            path.heads[position] = Head(number, text)
        elif level == _ROOT_LEVEL:
            path.root, path.scheme = text, number
        else:
            path.nodes[level][position] = text
    return path


def _verify(key: bytes, owner_id: int, head: Head | None, path: _Path) -> None:
    if path.root is None:
        raise _root_failure(owner_id, "the record-version root is missing")
    _, root = _climb(key, owner_id, head, path)
    if not hmac.compare_digest(path.root, root):
        raise _root_failure(owner_id, "the owner's head does not sign to the record-version root")


def _root_failure(owner_id: int, reason: str) -> IntegrityFailure:
    return IntegrityFailure(_ROLLED_BACK, owner_id=owner_id, table=None, row_id=None, reason=reason)


def _climb(
    key: bytes, owner_id: int, head: Head | None, path: _Path
) -> tuple[dict[int, tuple[int, str | None]], str]:
    """The owner's nodes and the root, with ``head`` as the owner's and the path's siblings.

    Returns:
        ``({level: (position, mac or None where the node has no children)}, root mac)``.
    """
    children = {o: _leaf(key, o, h) for o, h in path.heads.items() if o != owner_id}
    if head is not None:
        children[owner_id] = _leaf(key, owner_id, head)
    mine: dict[int, tuple[int, str | None]] = {}
    for level in range(1, _ROOT_LEVEL):
        position = owner_id // FANOUT**level
        mac = _node(key, level, position, children) if children else None
        mine[level] = (position, mac)
        children = {p: m for p, m in path.nodes.get(level, {}).items() if p != position}
        if mac is not None:
            children[position] = mac
    return mine, _node(key, _ROOT_LEVEL, 0, children)


def _tree(key: bytes, heads: Mapping[int, Head]) -> tuple[dict[int, dict[int, str]], str]:
    """Every node (``{level: {position: mac}}``) and the root over ``heads``."""
    children = {owner: _leaf(key, owner, head) for owner, head in heads.items()}
    nodes: dict[int, dict[int, str]] = {}
    for level in range(1, _ROOT_LEVEL):
        blocks: dict[int, dict[int, str]] = defaultdict(dict)
        for position, mac in children.items():
            blocks[position // FANOUT][position] = mac
        nodes[level] = {p: _node(key, level, p, block) for p, block in blocks.items()}
        children = nodes[level]
    return nodes, _node(key, _ROOT_LEVEL, 0, children)


def _root_of(key: bytes, heads: Mapping[int, Head], scheme: int) -> str:
    if scheme == FLAT:
        body = "".join(f"{owner}|{h.counter}|{h.digest}\n" for owner, h in sorted(heads.items()))
        return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return _tree(key, heads)[1]


def _leaf(key: bytes, owner_id: int, head: Head) -> str:
    return _mac(key, f"head|{owner_id}|{head.counter}|{head.digest}")


def _node(key: bytes, level: int, position: int, children: Mapping[int, str]) -> str:
    # Level and position are signed too, so a node's MAC is valid in its own place only.
    body = "".join(f"{p}={mac};" for p, mac in sorted(children.items()))
    return _mac(key, f"node|{level}|{position}|{body}")


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _all_heads(session: Session) -> dict[int, Head]:
    heads = schema.table_of(schema.SealHead)
    rows = session.execute(sa.select(heads.c.user_id, heads.c.counter, heads.c.digest))
    return {owner: Head(counter, text) for owner, counter, text in rows}


def _replace_flat_root(session: Session, key: bytes, owner_id: int) -> None:
    # Once per database, by whichever transaction comes first; the others wait for the lock
    # and then find the tree.
    root = _lock_root(session)
    if root is None or root.scheme != FLAT:
        return
    if not hmac.compare_digest(root.mac, _root_of(key, _all_heads(session), FLAT)):
        raise _root_failure(owner_id, "the record-version root's signature is invalid")
    sign_heads(session, key)


def _store_path(session: Session, path: _Path, nodes: Mapping[int, tuple[int, str | None]]) -> None:
    table = schema.table_of(schema.SealNode)
    for level, (position, mac) in nodes.items():
        where = sa.and_(table.c.level == level, table.c.position == position)
        if position in path.nodes.get(level, {}):
            query = table.delete() if mac is None else table.update().values(mac=mac)
            session.execute(query.where(where))
        elif mac is not None:
            session.execute(table.insert().values(level=level, position=position, mac=mac))


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
