"""The master key and the per-user data keys it wraps.

Several processes (app workers, the command line) may hold the same database open while one
of them rotates the master key. The ``key_check`` row holds the fingerprint of the key the
database currently uses, and every transaction that uses the master key reads that row
first, under a lock that the rotation's update conflicts with: a process still holding the
retired key notices inside the very transaction that would wrap, unwrap or sign with it,
loads the new key from the key file if it can, and otherwise refuses. Nothing is ever
wrapped or signed with a retired key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from sqlmodel import Session, select

from core.errors import UserError
from storage import crypto, schema, versions
from storage.sealing import RowSealer

_LOG = logging.getLogger(__name__)


class MasterKeyRotated(UserError):
    """Another process rotated the master key and this one cannot load the new key."""

    code = "master_key_rotated"
    default_message = (
        "The master key was rotated by another process; restart the app with the new key "
        "(MASTER_KEY or the key file)."
    )


class Keyring:
    """The master key of an open database: wraps, unwraps and derives keys from it."""

    def __init__(self, master: bytes, reload: Callable[[], Iterable[bytes]] = tuple) -> None:
        """Hold the master key.

        Args:
            master: Raw 32-byte master key.
            reload: Returns the keys this process could switch to when the database's key
                changed (read again from the key file); none by default.
        """
        self._state = (master, crypto.key_check_value(master))
        self._reload = reload

    def current(self, session: Session, *, for_rotation: bool = False) -> bytes:
        """The master key the database uses now, checked inside the caller's transaction.

        Reading the ``key_check`` row share-locks it (PostgreSQL; SQLite serialises writers),
        so a rotation cannot commit between this check and the caller's commit; the lock is
        always taken before the audit head's, the order the rotation takes them in.

        Args:
            session: The caller's open session.
            for_rotation: Lock the row exclusively, as the rotation does.

        Returns:
            The raw master key.

        Raises:
            MasterKeyRotated: The database uses a key this process does not have.
        """
        query = select(schema.KeyCheck).where(schema.KeyCheck.id == 1)
        # FOR KEY SHARE, the weakest lock that still conflicts with the rotation's FOR UPDATE:
        # every transaction that touches a key takes it, so it must not exclude the others.
        query = (
            query.with_for_update()
            if for_rotation
            else query.with_for_update(read=True, key_share=True)
        )
        expected = session.exec(query).one().check_value
        master, check = self._state
        if check == expected:
            return master
        for candidate in self._reload():
            if crypto.key_check_value(candidate) == expected:
                _LOG.warning(
                    "The master key was rotated by another process; now using the new key."
                )
                self.use(candidate)
                return candidate
        raise MasterKeyRotated()

    def use(self, master: bytes) -> None:
        """Switch to ``master`` (after a rotation committed)."""
        self._state = (master, crypto.key_check_value(master))

    def subkey(self, session: Session, purpose: str) -> bytes:
        """A key derived from the current master key for one purpose (see :meth:`current`)."""
        return crypto.derive_subkey(self.current(session), purpose)

    def create_data_key(self, session: Session, user_id: int) -> None:
        """Give a new user a random data key, stored wrapped by the current master key."""
        wrapped = crypto.wrap_key(self.current(session), crypto.new_data_key(), user_id, 1)
        session.add(schema.UserKey(user_id=user_id, version=1, wrapped_key=wrapped))
        session.flush()

    def add_data_key_version(self, session: Session, user_id: int) -> int:
        """Give a user a new random data key, one version above their newest.

        From the commit on, every value of theirs is sealed with it; older values keep
        opening with the older versions, which stay (wrapped) until nothing needs them.

        Args:
            session: The caller's open session.
            user_id: Whose key.

        Returns:
            The new version.

        Raises:
            LookupError: The user has no data key.
            MasterKeyRotated: See :meth:`current`.
        """
        master = self.current(session)
        # Locked, so that two rotations of one user cannot both take the same number. The
        # lock waits for a rotation in progress, but the rows it returns are those from
        # before that rotation committed (PostgreSQL, read committed): read them again.
        query = select(schema.UserKey.version).where(schema.UserKey.user_id == user_id)
        if not session.exec(query.with_for_update()).all():
            raise LookupError(f"User {user_id} has no data key.")
        version = max(session.exec(query).all()) + 1
        wrapped = crypto.wrap_key(master, crypto.new_data_key(), user_id, version)
        session.add(schema.UserKey(user_id=user_id, version=version, wrapped_key=wrapped))
        session.flush()
        return version

    def sealer(self, session: Session, owner_id: int, *, for_update: bool = False) -> RowSealer:
        """Every version of a user's data key, unwrapped, to seal and open that user's rows.

        The owner's rows are first checked against their committed row versions
        (:mod:`storage.versions`), so a record rolled back to an older copy never opens.

        Args:
            session: Open session.
            owner_id: Owner of the keys.
            for_update: This transaction will seal or delete some of the owner's records:
                the owner is locked exclusively from now on rather than shared with readers.

        Returns:
            The owner's sealer.

        Raises:
            crypto.DecryptionError: The master key is wrong or a wrapped key was altered.
            IntegrityFailure: The owner's records are not the committed versions (see
                :func:`storage.versions.checked`).
            LookupError: The user has no data key.
            MasterKeyRotated: See :meth:`current`.
        """
        master = self.current(session)
        rows = session.exec(select(schema.UserKey).where(schema.UserKey.user_id == owner_id)).all()
        if not rows:
            raise LookupError(f"User {owner_id} has no data key.")
        root_key = crypto.derive_subkey(master, versions.ROOT_PURPOSE)
        return RowSealer(
            owner_id,
            {
                row.version: crypto.unwrap_key(master, row.wrapped_key, owner_id, row.version)
                for row in rows
            },
            versions.checked(session, root_key, owner_id, for_update=for_update),
        )

    def records_deleted(self, session: Session, owner_id: int) -> None:
        """Check the owner's records, then let this transaction delete some of them.

        Deletion changes the owner's committed row versions, which the commit records.

        Raises:
            IntegrityFailure: See :func:`storage.versions.checked`.
            MasterKeyRotated: See :meth:`current`.
        """
        root_key = crypto.derive_subkey(self.current(session), versions.ROOT_PURPOSE)
        versions.mark_changed(session, root_key, owner_id)

    def rewrap(self, session: Session, new_master: bytes) -> int:
        """Re-wrap every data key under ``new_master`` and re-sign the record-version tree.

        The new key's fingerprint is recorded too.

        Runs inside the caller's transaction, which holds the ``key_check`` row exclusively
        from the start, so every data key another process wraps is either committed before
        (and re-wrapped here) or wrapped after, under the new key. This keyring keeps the
        current key; the caller calls :meth:`use` after the commit.

        Args:
            session: The caller's open session.
            new_master: The replacement 32-byte master key.

        Returns:
            Number of data keys re-wrapped.

        Raises:
            crypto.DecryptionError: A wrapped key does not open with the current master key,
                or the record-version root does not verify (re-signing would launder it).
            MasterKeyRotated: See :meth:`current`.
        """
        master = self.current(session, for_rotation=True)
        versions.rekey_root(
            session,
            crypto.derive_subkey(master, versions.ROOT_PURPOSE),
            crypto.derive_subkey(new_master, versions.ROOT_PURPOSE),
        )
        rows = session.exec(select(schema.UserKey).with_for_update()).all()
        for row in rows:
            raw = crypto.unwrap_key(master, row.wrapped_key, row.user_id, row.version)
            row.wrapped_key = crypto.wrap_key(new_master, raw, row.user_id, row.version)
            session.add(row)
        check = session.exec(select(schema.KeyCheck).where(schema.KeyCheck.id == 1)).one()
        check.check_value = crypto.key_check_value(new_master)
        session.add(check)
        return len(rows)
