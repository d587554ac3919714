"""The master key and the per-user data keys it wraps."""

from __future__ import annotations

from sqlmodel import Session, select

from storage import crypto, schema
from storage.sealing import RowSealer


class Keyring:
    """The master key of an open database: wraps, unwraps and derives keys from it."""

    def __init__(self, master: bytes) -> None:
        """Hold the master key.

        Args:
            master: Raw 32-byte master key.
        """
        self._master = master

    def subkey(self, purpose: str) -> bytes:
        """A key derived from the master key for one purpose (see :func:`crypto.derive_subkey`)."""
        return crypto.derive_subkey(self._master, purpose)

    def create_data_key(self, session: Session, user_id: int) -> None:
        """Give a new user a random data key, stored wrapped by the master key."""
        wrapped = crypto.wrap_key(self._master, crypto.new_data_key(), user_id, 1)
        session.add(schema.UserKey(user_id=user_id, version=1, wrapped_key=wrapped))
        session.flush()

    def sealer(self, session: Session, owner_id: int) -> RowSealer:
        """Every version of a user's data key, unwrapped, to seal and open that user's rows.

        Args:
            session: Open session.
            owner_id: Owner of the keys.

        Returns:
            The owner's sealer.

        Raises:
            crypto.DecryptionError: The master key is wrong or a wrapped key was altered.
            LookupError: The user has no data key.
        """
        rows = session.exec(select(schema.UserKey).where(schema.UserKey.user_id == owner_id)).all()
        if not rows:
            raise LookupError(f"User {owner_id} has no data key.")
        return RowSealer(
            owner_id,
            {
                row.version: crypto.unwrap_key(self._master, row.wrapped_key, owner_id, row.version)
                for row in rows
            },
        )

    def rewrap(self, session: Session, new_master: bytes) -> int:
        """Re-wrap every data key under ``new_master`` inside the caller's transaction.

        This keyring keeps the current master key; the caller replaces it after the commit.

        Args:
            session: The caller's open session.
            new_master: The replacement 32-byte master key.

        Returns:
            Number of data keys re-wrapped.

        Raises:
            crypto.DecryptionError: A wrapped key does not open with the current master key.
        """
        rows = session.exec(select(schema.UserKey).with_for_update()).all()
        for row in rows:
            raw = crypto.unwrap_key(self._master, row.wrapped_key, row.user_id, row.version)
            row.wrapped_key = crypto.wrap_key(new_master, raw, row.user_id, row.version)
            session.add(row)
        return len(rows)
