"""Rotating one user's data key: a new key version, then every sealed value re-sealed under it.

The rotation is a sequence of short transactions, never one long one, so that the app keeps
serving the user meanwhile and a crash loses at most the batch in flight. Each row records
the key version it is sealed with, and old versions stay (wrapped) while anything might
need them, so a rotation stopped half-way leaves every row readable; running it again
finishes the job under a newer version.

An image is re-sealed into a new blob written *before* the batch commits, and the old blob
is removed only *after* the commit: a crash in between leaves an orphan (the new blob if
the batch did not commit, the old one if it did), which the start-up sweep moves to the
quarantine (:mod:`storage.quarantine`); no image is ever without a blob.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from core.errors import UserError
from storage import audit, originals, policy, schema, versions
from storage.actor import Actor
from storage.db import Database, retry_when_busy
from storage.sealing import RowSealer

_BLOB = "blob"


class UnknownUser(UserError, LookupError):
    """No account has that name."""

    code = "unknown_user"
    default_message = "No account has that name."


class ImageMissing(UserError):
    """A scan's image blob is missing, so the rotation stopped before that batch."""

    code = "image_missing"
    default_message = "An image file is missing, so the key rotation stopped."


@dataclass(frozen=True)
class Account:
    """An account whose data key can be rotated."""

    user_id: int
    username: str


@dataclass(frozen=True)
class Resealed:
    """What one batch re-sealed.

    Attributes:
        records: Sealed rows moved to the new key version (scans, results, notes, ...,
            and kept original files).
        images: Blobs among them rewritten under the new key version (images and originals).
    """

    records: int
    images: int


def accounts(db: Database, username: str | None = None) -> list[Account]:
    """The accounts with a data key: one by name, or all of them (an operator's listing).

    Raises:
        UnknownUser: ``username`` names no account.
    """
    with db.transaction() as session:
        query = select(schema.User.id, schema.User.username).order_by(col(schema.User.id))
        if username is not None:
            query = query.where(schema.User.username == username)
        query = query.where(col(schema.User.id).in_(select(schema.UserKey.user_id).distinct()))
        found = [Account(schema.stored_id(uid), name) for uid, name in session.exec(query)]
    if username is not None and not found:
        raise UnknownUser(f"No account is named {username!r}.")
    return found


@retry_when_busy
def start(db: Database, user_id: int, *, by: Actor | None, operator: str | None) -> int:
    """Give the user a new data key version; their new values are sealed with it at once.

    Args:
        db: Database handle.
        user_id: Whose key.
        by: The user rotating their own key, or ``None`` for an operator.
        operator: Who rotates, as the audit trail names an operator (command line).

    Returns:
        The new key version.

    Raises:
        policy.AccessDenied: ``by`` is not that user, or not active.
    """
    with db.transaction() as session:
        _check(session, by, user_id)
        version = db.keyring.add_data_key_version(session, user_id)
        audit.append(
            session,
            db,
            "rotate_user_key",
            actor=by,
            actor_username=None if by else operator,
            patient_id=user_id,
            record_type="user_keys",
            details={"key_version": version},
        )
    return version


def pending(db: Database, user_id: int, version: int) -> int:
    """How many of the user's sealed rows and kept originals are under a key version below it.

    Reads only key versions, never a value, so it is not a record access.
    """
    with db.transaction() as session:
        return sum(
            session.execute(
                sa.select(sa.func.count())
                .select_from(table)
                .where(table.c[owner_column] == user_id)
                .where(table.c.key_version < version)
            ).scalar_one()
            for table, owner_column in _tables()
        )


@retry_when_busy
def reseal_batch(
    db: Database,
    user_id: int,
    *,
    by: Actor | None,
    operator: str | None,
    limit: int = 50,
) -> Resealed:
    """Re-seal up to ``limit`` of the user's rows still under an older key version.

    Runs in one transaction; the rows go to the user's newest key version.

    Args:
        db: Database handle.
        user_id: Whose rows.
        by: The user themselves, or ``None`` for an operator.
        operator: Who rotates, as the audit trail names an operator.
        limit: Most rows in this batch.

    Returns:
        The counts; zero records once nothing is left.

    Raises:
        policy.AccessDenied: ``by`` is not that user, or not active.
        crypto.DecryptionError: A value fails its check (nothing in this batch changes).
        ImageMissing: An image blob is missing (nothing in this batch changes).
    """
    written: list[str] = []
    retired: list[str] = []
    try:
        with db.transaction() as session:
            _check(session, by, user_id)
            sealer = db.keyring.sealer(session, user_id, for_update=True)
            records = 0
            for model, owner_column in versions.VERSIONED.values():
                for row in _older_rows(
                    session, model, owner_column, user_id, sealer.version, limit - records
                ):
                    _reseal_row(db, sealer, model, row, written, retired)
                    records += 1
            kept = _older_rows(
                session, schema.ScanOriginal, "owner_id", user_id, sealer.version, limit - records
            )
            for original in kept:
                _reseal_original(db, sealer, original, written, retired)
                records += 1
            if records:
                audit.append(
                    session,
                    db,
                    "reseal_records",
                    actor=by,
                    actor_username=None if by else operator,
                    patient_id=user_id,
                    details={
                        "records": records,
                        "images": len(written),
                        "key_version": sealer.version,
                    },
                )
    except BaseException:
        for name in written:
            db.blobs.discard(name)
        raise
    # Only now that the rows name the new blobs are the old ones unused.
    for name in retired:
        db.blobs.discard(name)
    return Resealed(records, len(written))


def _reseal_original(
    db: Database,
    sealer: RowSealer,
    row: schema.ScanOriginal,
    written: list[str],
    retired: list[str],
) -> None:
    try:
        data = originals.open_kept(db, sealer, row)
    except FileNotFoundError as exc:
        raise ImageMissing(
            f"The original file kept for scan {row.scan_id} is missing, so its key cannot be "
            "rotated: restore it with restore-quarantine (see list-quarantine), then run the "
            "rotation again; every record stays readable meanwhile."
        ) from exc
    fresh = db.blobs.new_name()
    sealed = sealer.seal(originals.BLOB_TABLE, row.scan_id, sealer.version, data)
    db.blobs.write(fresh, sealed)
    written.append(fresh)
    retired.append(row.blob_name)
    row.blob_name, row.key_version, row.blob_bytes = fresh, sealer.version, len(sealed)


def _check(session: Session, by: Actor | None, user_id: int) -> None:
    if by is None:
        return
    policy.ensure_active(session, by)
    if by.user_id != user_id:
        raise policy.AccessDenied("You can only rotate your own key.")


def _tables() -> list[tuple[sa.Table, str]]:
    sealed = [(schema.table_of(model), owner) for model, owner in versions.VERSIONED.values()]
    return [*sealed, (schema.table_of(schema.ScanOriginal), "owner_id")]


def _older_rows(
    session: Session,
    model: type[SQLModel],
    owner_column: str,
    user_id: int,
    version: int,
    limit: int,
) -> list[Any]:
    # Rows of any sealed table: each has ``key_version`` and ``payload`` (schema.py).
    if limit <= 0:
        return []
    table = schema.table_of(model)
    (key,) = table.primary_key.columns
    query = (
        select(model)
        .where(table.c[owner_column] == user_id)
        .where(table.c.key_version < version)
        .order_by(key)
        .limit(limit)
        .with_for_update()
    )
    return list(session.exec(query).all())


def _reseal_row(
    db: Database,
    sealer: RowSealer,
    model: type[SQLModel],
    row: Any,
    written: list[str],
    retired: list[str],
) -> None:
    table = schema.table_of(model)
    (key,) = table.primary_key.columns
    row_id: int = getattr(row, key.name)
    old: int = row.key_version
    new = sealer.version
    name = str(table.name)
    payload: bytes | None = row.payload
    if payload is not None:
        plain = sealer.open(name, row_id, old, payload)
        row.payload = sealer.seal(name, row_id, new, plain)
    if isinstance(row, schema.Scan):
        try:
            stored = db.blobs.read(row.blob_name)
        except FileNotFoundError as exc:
            raise ImageMissing(
                f"The image file of scan {row_id} is missing, so its key cannot be rotated: "
                "restore it with restore-quarantine (see list-quarantine), then run the "
                "rotation again; every record stays readable meanwhile."
            ) from exc
        image = sealer.open(_BLOB, row_id, old, stored)
        fresh = db.blobs.new_name()
        sealed = sealer.seal(_BLOB, row_id, new, image)
        db.blobs.write(fresh, sealed)
        written.append(fresh)
        retired.append(row.blob_name)
        row.blob_name, row.blob_bytes = fresh, len(sealed)
    row.key_version = new
