"""Rotating the master key that wraps every user's data key."""

from __future__ import annotations

from dataclasses import dataclass

from storage import audit, bootstrap, crypto
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
