"""Opening the database (schema, master key, first admin, audit head) and master-key rotation."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, text
from sqlmodel import Session, select

from core.errors import UserError
from core.settings import Settings
from core.words import plural
from storage import accounts, audit, crypto, originals, quarantine, schema, versions
from storage.blobs import open_blob_store
from storage.db import Database, make_engine
from storage.evidence import IntegrityFailure
from storage.keyring import Keyring
from storage.migrations import apply_migrations

_LOG = logging.getLogger(__name__)


class StorageMismatch(UserError):
    """The database and the image folder do not belong together; nothing was changed."""

    code = "storage_mismatch"
    default_message = "The database does not match the image folder."


class WrongMasterKey(UserError, crypto.DecryptionError):
    """The configured master key is not the one the database uses."""

    code = "wrong_master_key"
    default_message = "The master key does not match this database."


def open_database(
    settings: Settings, *, bootstrap_admin: bool = True, maintenance: bool = False
) -> Database:
    """Open (and on first start create) the database described by ``settings``.

    Applies pending migrations, checks that the master key is the one the database was
    created with, creates the audit chain head and the first admin when missing, refuses a
    database without scans beside an image folder with images, moves image files left
    without a record by a crash to the quarantine (see :mod:`storage.quarantine`), and
    reports an audit trail whose head is behind its anchors in the blob store (see
    :func:`check_audit_anchors`).

    Args:
        settings: Application settings (``database_url``, ``data_dir``, ``master_key``).
        bootstrap_admin: Create the first admin if there is none.
        maintenance: Skip the image-folder check and the sweep, for the operator's commands
            that inspect or repair exactly that situation.

    Returns:
        The ready handle.

    Raises:
        crypto.MasterKeyError: The master key is malformed.
        WrongMasterKey: The master key does not belong to this database.
        StorageMismatch: The database has no scans but the image folder has images.
        BlobStoreUnavailable: ``BLOB_URL`` names a bucket that cannot be used.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    try:
        apply_migrations(engine)
        keyring = Keyring(_open_master_key(engine, settings), lambda: _key_files(settings))
        db = Database(engine, open_blob_store(settings), keyring, settings)
        _owner_only_files(settings)
        # Before anything is appended: a wrong database beside this store's images would
        # otherwise be refused for being behind the store's audit anchors, a vaguer sentence.
        if not maintenance:
            check_images_match(db)
        audit.ensure_head(db)
        db.on_integrity_failure = lambda failure: _record_integrity_failure(db, failure)
        ensure_version_root(db)
        if bootstrap_admin:
            accounts.bootstrap_admin(db)
        if not maintenance:
            sweep_orphans(db)
        check_audit_anchors(db)
    except BaseException:
        engine.dispose()
        raise
    return db


def ensure_version_root(db: Database) -> None:
    """Give a database without one its record-version root (see :mod:`storage.versions`).

    Done once: the audit trail records it, and a root missing after that (deleted by
    someone with write access to the database) is not made again, so every sealed read
    keeps refusing until an operator looks.
    """
    with db.transaction() as session:
        if versions.has_root(session):
            return
        started = session.exec(
            select(schema.AuditEvent.id)
            .where(schema.AuditEvent.action == versions.STARTED_ACTION)
            .limit(1)
        ).first()
        if started is not None:
            _LOG.error("The record-version root is missing: sealed records will not open.")
            return
        owners = versions.create_root(session, db.keyring.subkey(session, versions.ROOT_PURPOSE))
        audit.append(session, db, versions.STARTED_ACTION, details={"owners": owners})


def check_audit_anchors(db: Database) -> audit.ChainState | None:
    """Report an audit trail cut after a snapshot: its head behind its anchors outside the database.

    The app still starts, so that an operator can look (``verify-audit``) and repair
    (``repair-audit --yes``); the cut is logged as an error and recorded as a break, which
    the admin page lists, and appends past it are refused (see :mod:`storage.audit_anchors`).

    Returns:
        The cut found, or ``None``.
    """
    cut = audit.check_anchors(db)
    if cut is not None:
        _LOG.error(
            "The audit trail does not match its anchors in the image store: %s. Run "
            "verify-audit, then repair-audit --yes once the loss is understood.",
            cut.reason,
        )
    return cut


def _record_integrity_failure(db: Database, failure: IntegrityFailure) -> None:
    # Runs after the refused transaction rolled back; a broken audit trail must not replace
    # the error the user is about to see, so it is logged instead.
    _LOG.error("Sealed records of user %s failed their check: %s", failure.owner_id, failure.reason)
    try:
        with db.transaction() as session:
            audit.append(
                session,
                db,
                "integrity_failure",
                patient_id=failure.owner_id or None,
                record_type=failure.table,
                record_id=failure.row_id,
                details={"reason": failure.reason},
            )
    except Exception:
        _LOG.exception("Could not record the failed check in the audit trail.")


def pending_key_file(settings: Settings) -> Path:
    """Where a rotation writes the new key before the database commits to it."""
    return settings.key_file.with_name(settings.key_file.name + ".new")


def rotate_master_key(db: Database, new_master: bytes) -> int:
    """Re-wrap every data key under ``new_master`` in one transaction, then use it.

    The audit chain head MAC and the key fingerprint are re-keyed in the same transaction,
    so a crash leaves either the old or the new key valid, never a mix; the head is anchored
    under the new key once that transaction commits. Other processes on
    the same database notice the new fingerprint in their next transaction that uses the
    key (see :mod:`storage.keyring`).

    Args:
        db: Database handle.
        new_master: The replacement 32-byte master key.

    Returns:
        Number of data keys re-wrapped.

    Raises:
        crypto.DecryptionError: A wrapped key does not open with the current master key, or
            the audit chain head does not verify or is behind its anchors.
        MasterKeyRotated: Another process rotated the key first.
    """
    with db.transaction() as session:
        # The fingerprint row is locked first, as in every other transaction using the key.
        db.keyring.current(session, for_rotation=True)
        audit.rekey_head(session, db, new_master)
        count = db.keyring.rewrap(session, new_master)
    db.keyring.use(new_master)
    return count


def _owner_only_files(settings: Settings) -> None:
    # mkdir's mode applies only to folders it creates, so a DATA_DIR or image folder that
    # already existed (or a key file copied in by hand) keeps whatever mode it had.
    if settings.blob_dir is not None:
        os.chmod(settings.blob_dir, 0o700)
    for path in (settings.key_file, pending_key_file(settings)):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path, 0o600)


def _open_master_key(engine: Engine, settings: Settings) -> bytes:
    # A fresh database adopts the configured key (creating the local key file if needed).
    # Otherwise the key must match the stored fingerprint; a key file left pending by a
    # rotation that committed but crashed before renaming it is moved into place here.
    with Session(engine) as session, session.begin():
        row = session.get(schema.KeyCheck, 1)
        if row is None:
            master = crypto.load_master_key(settings)
            session.add(schema.KeyCheck(id=1, check_value=crypto.key_check_value(master)))
            return master
        expected = row.check_value
    if settings.master_key:
        master = crypto.decode_master_key(settings.master_key)
        if crypto.key_check_value(master) == expected:
            return master
        raise WrongMasterKey(
            "MASTER_KEY does not match this database: set it to the key the database was "
            "last rotated to."
        )
    pending = pending_key_file(settings)
    for path in (settings.key_file, pending):
        found = _read_key_file(path)
        if found is None or crypto.key_check_value(found) != expected:
            continue
        if path == pending:
            os.replace(pending, settings.key_file)
            _LOG.warning(
                "Finished an interrupted master-key rotation: %s is now the key file.", pending
            )
        return found
    raise WrongMasterKey(
        f"The master key file {settings.key_file} does not match this database: restore it "
        "from your copy of the key this database was last rotated to (an interrupted "
        f"rotation leaves that key in {pending}), or set MASTER_KEY to that key."
    )


def _key_files(settings: Settings) -> Iterator[bytes]:
    # The keys a running process may switch to after another process rotated the key.
    if settings.master_key:
        return
    for path in (settings.key_file, pending_key_file(settings)):
        master = _read_key_file(path)
        if master is not None:
            yield master


def _read_key_file(path: Path) -> bytes | None:
    try:
        return crypto.decode_master_key(path.read_text())
    except FileNotFoundError:
        return None


#: How long an upload in flight may have its image stored before its scan row commits: a
#: younger image says nothing about a wrong database. Far below the sweep's
#: ``quarantine.ORPHAN_MIN_AGE``, so every image the sweep could move is counted.
UPLOAD_IN_FLIGHT = timedelta(minutes=15)


def check_images_match(db: Database) -> None:
    """Refuse a database without scans beside an image folder that holds images.

    That pairing almost always means the wrong database (a typo in ``DATABASE_URL``, a new
    PostgreSQL database, a backup restored elsewhere), and sweeping it would set every image
    aside as an orphan. Images younger than :data:`UPLOAD_IN_FLIGHT` are not counted: another
    replica's first upload stores its image before its scan row commits, and a replica
    starting in between must not be refused.

    Raises:
        StorageMismatch: The database has no scans but the image folder has images.
    """
    # The scan count is one cheap query; the folder is listed only when it is zero.
    with db.transaction() as session:
        scans = session.exec(select(func.count()).select_from(schema.Scan)).one()
    if scans:
        return
    settled = (datetime.now(UTC) - UPLOAD_IN_FLIGHT).timestamp()
    images = sum(1 for info in db.blobs.live() if not info.is_temporary and info.modified < settled)
    if images:
        raise StorageMismatch(
            f"The database has no scans but the image store {db.blobs.location} holds "
            f"{plural(images, 'image')}, so DATABASE_URL probably points at a new or wrong "
            "database (or a restored backup from before these images): check DATABASE_URL, "
            "DATA_DIR and BLOB_URL, and if the database is right, run the quarantine-orphans "
            "command."
        )


def sweep_orphans(
    db: Database, min_age: timedelta = quarantine.ORPHAN_MIN_AGE
) -> list[quarantine.QuarantinedBlob]:
    """Move image files that no scan refers to into the quarantine (see :func:`quarantine.sweep`).

    Args:
        db: Database handle.
        min_age: Files younger than this are left alone.

    Returns:
        The files moved.
    """

    def referenced() -> list[str]:
        with db.transaction() as session:
            scans = list(session.exec(select(schema.Scan.blob_name)).all())
            return scans + originals.blob_names(session)

    def oldest_open() -> datetime | None:
        # Another app server may hold a transaction that wrote its blob and has not yet
        # committed; PostgreSQL can say when the oldest open one began, SQLite cannot.
        if db.engine.dialect.name != "postgresql":
            return None
        with db.transaction() as session:
            return session.execute(_OLDEST_OPEN_TRANSACTION).scalar()

    return quarantine.sweep(db.blobs, referenced, min_age=min_age, oldest_open=oldest_open)


_OLDEST_OPEN_TRANSACTION = text(
    "SELECT min(xact_start) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
)
