"""The database handle: engine, encrypted blob store, master key and per-user data keys."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from core.settings import Settings
from storage import crypto, schema
from storage.blobs import BlobStore
from storage.migrations import apply_migrations

_LOG = logging.getLogger(__name__)

#: Blob files without a record are deleted at start-up once they are this old; younger
#: ones may belong to a transaction still in progress in another process.
ORPHAN_MIN_AGE_S = 3600


@dataclass(frozen=True)
class Actor:
    """The logged-in user on whose behalf storage functions act."""

    user_id: int
    username: str
    role: str


class Database:
    """Everything storage functions need; one per process (safe to share between sessions)."""

    def __init__(self, engine: Engine, blobs: BlobStore, master_key: bytes, settings: Settings):
        """Wrap an already migrated engine; use :meth:`open` instead.

        Args:
            engine: SQLAlchemy engine.
            blobs: Encrypted image store.
            master_key: Raw master key (wraps every data key).
            settings: Application settings.
        """
        self.engine = engine
        self.blobs = blobs
        self.settings = settings
        self._master_key = master_key

    @classmethod
    def open(cls, settings: Settings, *, bootstrap_admin: bool = True) -> Database:
        """Open (and on first start create) the database described by ``settings``.

        Applies pending migrations, checks that the master key is the one the database was
        created with, creates the first admin when none exists, and deletes image files left
        without a record by a crash (see :meth:`remove_orphan_blobs`).

        Args:
            settings: Application settings (``database_url``, ``data_dir``, ``master_key``).
            bootstrap_admin: Create the first admin if there is none.

        Returns:
            The ready handle.

        Raises:
            crypto.MasterKeyError: The master key is malformed.
            crypto.DecryptionError: The master key does not belong to this database.
        """
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        master = crypto.load_master_key(settings)
        engine = make_engine(settings.database_url)
        try:
            apply_migrations(engine)
            db = cls(engine, BlobStore(settings.blob_dir), master, settings)
            db._check_master_key()
            from storage import accounts, audit

            audit.ensure_head(db)
            if bootstrap_admin:
                accounts.bootstrap_admin(db)
            db.remove_orphan_blobs()
        except BaseException:
            engine.dispose()
            raise
        return db

    def remove_orphan_blobs(self, min_age_s: float = ORPHAN_MIN_AGE_S) -> int:
        """Delete encrypted image files that no scan refers to and that are old enough.

        A crash between writing a blob and committing its scan, or between deleting a scan
        and its blob, leaves such a file: unreadable without its row, but still disk space.

        Args:
            min_age_s: Minimum age of a deleted file (protects uncommitted scans).

        Returns:
            Number of files deleted (logged when not zero).
        """

        def referenced() -> list[str]:
            with self.transaction() as session:
                return list(session.exec(select(schema.Scan.blob_name)).all())

        removed = self.blobs.remove_orphans(referenced, min_age_s)
        if removed:
            _LOG.warning("Deleted %d orphaned image file(s) with no scan record, older than "
                         "%d seconds.", len(removed), int(min_age_s))
        return len(removed)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on normal exit and rolls back on an exception."""
        with Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    @property
    def is_postgres(self) -> bool:
        """Whether the backend is PostgreSQL (row locks available)."""
        return self.engine.dialect.name == "postgresql"

    def subkey(self, purpose: str) -> bytes:
        """A key derived from the master key for one purpose (see :func:`crypto.derive_subkey`)."""
        return crypto.derive_subkey(self._master_key, purpose)

    def create_data_key(self, session: Session, user_id: int) -> None:
        """Give a new user a random data key, stored wrapped by the master key."""
        wrapped = crypto.wrap_key(self._master_key, crypto.new_data_key(), user_id, 1)
        session.add(schema.UserKey(user_id=user_id, version=1, wrapped_key=wrapped))
        session.flush()

    def data_key(self, session: Session, user_id: int) -> tuple[bytes, int]:
        """Unwrap a user's current data key (the one new ciphertexts use).

        Args:
            session: Open session.
            user_id: Owner of the key.

        Returns:
            ``(raw key, version)``.

        Raises:
            crypto.DecryptionError: The master key is wrong or the wrapped key was altered.
            LookupError: The user has no data key.
        """
        keys = self.data_keys(session, user_id)
        version = max(keys)
        return keys[version], version

    def data_keys(self, session: Session, user_id: int) -> dict[int, bytes]:
        """Unwrap every version of a user's data key (to read older ciphertexts).

        Raises:
            crypto.DecryptionError: The master key is wrong or a wrapped key was altered.
            LookupError: The user has no data key.
        """
        rows = session.exec(select(schema.UserKey).where(schema.UserKey.user_id == user_id)).all()
        if not rows:
            raise LookupError(f"User {user_id} has no data key.")
        return {
            row.version: crypto.unwrap_key(self._master_key, row.wrapped_key, user_id, row.version)
            for row in rows
        }

    def rotate_master_key(self, new_master: bytes) -> int:
        """Re-wrap every data key under ``new_master`` in one transaction, then use it.

        The audit chain head MAC and the key fingerprint are re-keyed in the same
        transaction, so a crash leaves either the old or the new key valid, never a mix.

        Args:
            new_master: The replacement 32-byte master key.

        Returns:
            Number of data keys re-wrapped.

        Raises:
            crypto.DecryptionError: A wrapped key does not open with the current master key.
        """
        from storage import audit

        with self.transaction() as session:
            rows = session.exec(select(schema.UserKey).with_for_update()).all()
            for row in rows:
                raw = crypto.unwrap_key(self._master_key, row.wrapped_key, row.user_id, row.version)
                row.wrapped_key = crypto.wrap_key(new_master, raw, row.user_id, row.version)
                session.add(row)
            check = session.get(schema.KeyCheck, 1)
            check.check_value = crypto.key_check_value(new_master)
            session.add(check)
            audit.rekey_head(session, self, crypto.derive_subkey(new_master, audit.HEAD_PURPOSE))
        self._master_key = new_master
        return len(rows)

    def _check_master_key(self) -> None:
        expected = crypto.key_check_value(self._master_key)
        with self.transaction() as session:
            row = session.get(schema.KeyCheck, 1)
            if row is None:
                session.add(schema.KeyCheck(id=1, check_value=expected))
            elif row.check_value != expected:
                raise crypto.DecryptionError(
                    "The master key does not match this database (wrong MASTER_KEY or key file)."
                )


def make_engine(url: str) -> Engine:
    """An engine with the connection settings this app relies on.

    SQLite: WAL journal and ``synchronous=FULL`` on every connection (an acknowledged commit
    survives power loss), foreign keys on, and every transaction ``BEGIN IMMEDIATE`` so a
    read-then-write transaction never fails half-way on a lock upgrade.

    Args:
        url: SQLAlchemy URL.

    Returns:
        The engine.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Autocommit at the driver level so that the "begin" hook below controls transactions.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
