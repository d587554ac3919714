"""Rotating keys: the master key that wraps every data key, and one user's data key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from storage import audit, bootstrap, crypto, rekey
from storage.actor import Actor
from storage.db import Database


@dataclass(frozen=True)
class KeyRotation:
    """What a rotation did.

    Attributes:
        rewrapped: How many data keys were re-wrapped.
        new_key: The new master key (to hand to the operator when it was generated).
        key_file_replaced: The database's key lives in the key file, which now holds the new
            key; ``False`` when it comes from ``MASTER_KEY``, which the operator must update.
    """

    rewrapped: int
    new_key: bytes
    key_file_replaced: bool


def rotate_master_key(db: Database, new_key: bytes | None, *, operator: str) -> KeyRotation:
    """Re-wrap every data key under a new master key and audit it.

    When the key comes from the key file, the new key is written beside it before the
    database commits and moved over it after, so whichever key the database uses exists on
    disk at every moment.

    Args:
        db: Database handle.
        new_key: The replacement key, or ``None`` to generate one.
        operator: Who rotates, as written in the audit trail.

    Returns:
        The count, the new key and whether the key file was replaced.

    Raises:
        storage.crypto.DecryptionError: A wrapped key does not open with the current key.
    """
    new = new_key if new_key is not None else crypto.new_master_key()
    settings = db.settings
    pending = bootstrap.pending_key_file(settings)
    uses_key_file = settings.master_key is None
    if uses_key_file:
        crypto.write_key_file(pending, new)
    count = bootstrap.rotate_master_key(db, new)
    if uses_key_file:
        pending.replace(settings.key_file)
    with db.transaction() as session:
        audit.append(
            session, db, "rotate_master_key", actor_username=operator, details={"keys": count}
        )
    return KeyRotation(count, new, uses_key_file)


@dataclass(frozen=True)
class UserKeyRotation:
    """What the rotation of one user's data key did.

    Attributes:
        username: Whose key.
        key_version: The new version, which now seals every value of theirs.
        records: Sealed rows re-sealed under it.
        images: Image files among them rewritten.
    """

    username: str
    key_version: int
    records: int
    images: int


def rotate_user_key(
    db: Database,
    account: rekey.Account,
    *,
    by: Actor | None = None,
    operator: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    batch_size: int = 50,
) -> UserKeyRotation:
    """Give a user a new data key version and re-seal every value of theirs under it.

    Runs in batches of short transactions (see :mod:`storage.rekey`): the app keeps
    serving the user meanwhile, and an interruption leaves every record readable; running
    the rotation again finishes it under a newer version.

    Args:
        db: Database handle.
        account: Whose key (:func:`storage.rekey.accounts`).
        by: The user rotating their own key; ``None`` for an operator.
        operator: Who rotates, as the audit trail names an operator.
        on_progress: Called with ``(done, total)`` rows after each batch.
        batch_size: Rows per transaction.

    Returns:
        The new version and the counts.

    Raises:
        policy.AccessDenied: ``by`` is not that user, or not active.
        rekey.ImageMissing: An image file is missing (the rows done so far stay done).
        storage.crypto.DecryptionError: A value fails its integrity check.
    """
    version = rekey.start(db, account.user_id, by=by, operator=operator)
    total = rekey.pending(db, account.user_id, version)
    done = images = 0
    if on_progress is not None:
        on_progress(0, total)
    while True:
        batch = rekey.reseal_batch(db, account.user_id, by=by, operator=operator, limit=batch_size)
        if batch.records == 0:
            break
        done, images = done + batch.records, images + batch.images
        if on_progress is not None:
            on_progress(min(done, total), total)
    return UserKeyRotation(account.username, version, done, images)


def rotate_own_key(
    db: Database,
    actor: Actor,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> UserKeyRotation:
    """A user renews their own data key (:func:`rotate_user_key`, audited as theirs).

    Args:
        db: Database handle.
        actor: The user; only their own key.
        on_progress: Called with ``(done, total)`` rows after each batch.

    Returns:
        The new version and the counts.
    """
    return rotate_user_key(
        db, rekey.Account(actor.user_id, actor.username), by=actor, on_progress=on_progress
    )
