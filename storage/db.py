"""The database handle: engine, transactions, encrypted blob store and the keyring.

Contention is not an outage. PostgreSQL aborts a transaction that deadlocked or could not be
serialised, and SQLite gives up on a file another writer kept locked; both leave nothing
changed, so :meth:`Database.transaction` reports them as :class:`DatabaseBusy`, and
:func:`retry_when_busy` runs the whole unit of work again a few times before the user is told
to try again. A lost connection stays :class:`DatabaseUnavailable`, and a statement PostgreSQL
cancelled at ``statement_timeout`` (``DB_STATEMENT_TIMEOUT_MS``) is :class:`DatabaseSlow`.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from core.errors import UserError
from core.settings import Settings
from storage.blobs import BlobStore
from storage.evidence import IntegrityFailure
from storage.evidence import RecordAfterRollback as RecordAfterRollback
from storage.keyring import Keyring

_LOG = logging.getLogger(__name__)

#: SQLSTATEs of a transaction PostgreSQL aborted because of other transactions:
#: serialization failure, deadlock, and a lock not granted in time (``lock_timeout``).
_CONTENTION_SQLSTATES = frozenset({"40001", "40P01", "55P03"})
#: SQLite's primary result codes for a file or table another connection holds.
_SQLITE_CONTENTION = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
#: SQLSTATE of a statement cancelled, here by ``statement_timeout``.
_QUERY_CANCELED = "57014"
#: Runs of a unit of work before :class:`DatabaseBusy` reaches the user, and the longest
#: wait before the first rerun (doubled for each next one, each wait drawn at random below
#: it so that the transactions that collided do not collide again in step).
BUSY_ATTEMPTS = 5
_BUSY_FIRST_WAIT_S = 0.05

_P = ParamSpec("_P")
_T = TypeVar("_T")


class DatabaseUnavailable(UserError):
    """The database refused or dropped the connection before the work was committed."""

    code = "database_unavailable"
    default_message = (
        "The database cannot be reached right now, so nothing was changed; "
        "please try again in a minute."
    )


class DatabaseBusy(UserError):
    """Other work on the same records kept this transaction from completing; nothing changed."""

    code = "database_busy"
    default_message = (
        "The database is busy with other work on the same records, so nothing was changed; "
        "please try again."
    )


class DatabaseSlow(UserError):
    """A statement ran past ``statement_timeout`` and was cancelled; its transaction rolled back.

    Not retried: a database too slow to answer in time is not helped by more work.
    """

    code = "database_slow"
    default_message = (
        "The database took too long to answer, so nothing was changed; "
        "please try again in a minute."
    )


class CommitUnconfirmed(UserError):
    """The connection failed during the commit itself: the work may or may not be stored."""

    code = "commit_unconfirmed"
    default_message = (
        "The connection to the database failed just as this was being saved, so it may or "
        "may not have been saved; check before doing it again."
    )


class Database:
    """Everything storage functions need; one per process (safe to share between sessions)."""

    def __init__(
        self, engine: Engine, blobs: BlobStore, keyring: Keyring, settings: Settings
    ) -> None:
        """Wrap an already migrated engine; :func:`storage.bootstrap.open_database` makes one.

        Args:
            engine: SQLAlchemy engine.
            blobs: Encrypted image store.
            keyring: The master key (wraps every data key).
            settings: Application settings.
        """
        self.engine = engine
        self.blobs = blobs
        self.keyring = keyring
        self.settings = settings
        #: Records a sealed record's failed check once its transaction rolled back (the
        #: audit trail; set by :func:`storage.bootstrap.open_database`).
        self.on_integrity_failure: Callable[[IntegrityFailure], None] | None = None

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work commits on normal exit and rolls back on an exception.

        A :class:`RecordAfterRollback` error is given the chance to record itself once the
        rollback has released the locks its own record needs. A transaction the database
        aborted for contention (deadlock, serialization failure, SQLite's lock) becomes
        :class:`DatabaseBusy`, even during the commit: either database then rolled it back.
        A statement cancelled at the statement timeout becomes :class:`DatabaseSlow`.
        A lost or refused connection (a database restart, a network cut) becomes
        :class:`DatabaseUnavailable`, or :class:`CommitUnconfirmed` when it happened during
        the commit.

        Raises:
            DatabaseBusy: Other transactions kept this one from completing.
            DatabaseSlow: A statement ran past the statement timeout.
            DatabaseUnavailable: The connection failed before the commit.
            CommitUnconfirmed: The connection failed during the commit.
        """
        committing = False
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
                committing = True
        except RecordAfterRollback as exc:
            exc.record(self)
            raise
        except OperationalError as exc:
            if is_contention(exc):
                _LOG.info("Transaction aborted for contention: %s", exc.orig)
                raise DatabaseBusy() from exc
            if getattr(exc.orig, "sqlstate", None) == _QUERY_CANCELED:
                _LOG.warning("Statement cancelled at the statement timeout: %s", exc.orig)
                raise DatabaseSlow() from exc
            _LOG.warning("Database connection failed: %s", exc)
            raise (CommitUnconfirmed() if committing else DatabaseUnavailable()) from exc


def is_contention(exc: OperationalError) -> bool:
    """Whether the database aborted the transaction because of others, not a lost connection."""
    if getattr(exc.orig, "sqlstate", None) in _CONTENTION_SQLSTATES:
        return True
    # Extended result codes (SQLITE_BUSY_SNAPSHOT, ...) keep the primary code in the low byte.
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _SQLITE_CONTENTION


def retry_when_busy(work: Callable[_P, _T]) -> Callable[_P, _T]:
    """Run ``work`` again when the database was busy, up to :data:`BUSY_ATTEMPTS` runs.

    For a function whose database work is one transaction (a save, a grant, one batch of a
    key rotation): :class:`DatabaseBusy` means that transaction rolled back, so a rerun
    repeats nothing stored. A blob such a function wrote before its commit is removed by its
    own error handling, or set aside later by the orphan sweep; a rerun writes a new one.

    Raises:
        DatabaseBusy: Every run met contention.
    """

    @functools.wraps(work)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        for attempt in range(1, BUSY_ATTEMPTS):
            try:
                return work(*args, **kwargs)
            except DatabaseBusy:
                time.sleep(random.uniform(0, _BUSY_FIRST_WAIT_S * 2 ** (attempt - 1)))
        return work(*args, **kwargs)

    return run


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 10,
    statement_timeout_ms: int = 15_000,
) -> Engine:
    """An engine with the connection settings this app relies on.

    PostgreSQL: a pool of ``pool_size`` connections plus ``max_overflow`` more under bursts
    (per app process: size them so that replicas x (pool_size + max_overflow) stays below the
    server's ``max_connections``), checked before use, and every statement cancelled after
    ``statement_timeout_ms`` (added to the ``options`` the URL may already carry, before
    them, so a ``statement_timeout`` in the URL wins).

    SQLite: the database file and its WAL files readable by their owner only, WAL journal and
    ``synchronous=FULL`` on every connection (an acknowledged commit survives power loss),
    foreign keys on, and every transaction ``BEGIN IMMEDIATE`` so a read-then-write
    transaction never fails half-way on a lock upgrade.

    Args:
        url: SQLAlchemy URL.
        pool_size: PostgreSQL connections kept open (``DB_POOL_SIZE``).
        max_overflow: PostgreSQL connections opened beyond them (``DB_MAX_OVERFLOW``).
        statement_timeout_ms: PostgreSQL's ``statement_timeout`` (``DB_STATEMENT_TIMEOUT_MS``).

    Returns:
        The engine.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        given = parsed.query.get("options", "")
        given = " ".join(given) if isinstance(given, tuple) else given
        options = f"-c statement_timeout={statement_timeout_ms} {given}".strip()
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=max_overflow,
            connect_args={"options": options},
        )
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        _owner_only_sqlite_files(parsed.database)
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


def _owner_only_sqlite_files(path: str) -> None:
    """Create the SQLite file readable by its owner only (0600) and tighten an existing one.

    SQLite would create it with the umask's mode (usually world-readable), whether or not
    DATA_DIR existed. It gives the ``-wal`` and ``-shm`` files the mode of the database
    file, so restricting that first covers them; existing ones are tightened too.
    """
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for suffix in ("", "-wal", "-shm"):
        with suppress(FileNotFoundError):
            os.chmod(path + suffix, 0o600)
