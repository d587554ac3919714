"""Opening the database (schema, master key, first admin, audit head) and master-key rotation."""

from __future__ import annotations

import logging

from sqlmodel import select

from core.settings import Settings
from storage import accounts, audit, crypto, schema
from storage.blobs import BlobStore
from storage.db import Database, make_engine
from storage.keyring import Keyring
from storage.migrations import apply_migrations

_LOG = logging.getLogger(__name__)

#: Blob files without a record are deleted at start-up once they are this old; younger
#: ones may belong to a transaction still in progress in another process.
ORPHAN_MIN_AGE_S = 3600


def open_database(settings: Settings, *, bootstrap_admin: bool = True) -> Database:
    """Open (and on first start create) the database described by ``settings``.

    Applies pending migrations, checks that the master key is the one the database was
    created with, creates the audit chain head and the first admin when missing, and deletes
    image files left without a record by a crash.

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
        db = Database(engine, BlobStore(settings.blob_dir), Keyring(master), settings)
        _check_master_key(db, master)
        audit.ensure_head(db)
        if bootstrap_admin:
            accounts.bootstrap_admin(db)
        _remove_orphan_blobs(db)
    except BaseException:
        engine.dispose()
        raise
    return db


def rotate_master_key(db: Database, new_master: bytes) -> int:
    """Re-wrap every data key under ``new_master`` in one transaction, then use it.

    The audit chain head MAC and the key fingerprint are re-keyed in the same
    transaction, so a crash leaves either the old or the new key valid, never a mix.

    Args:
        db: Database handle.
        new_master: The replacement 32-byte master key.

    Returns:
        Number of data keys re-wrapped.

    Raises:
        crypto.DecryptionError: A wrapped key does not open with the current master key, or
            the audit chain head does not verify.
    """
    with db.transaction() as session:
        count = db.keyring.rewrap(session, new_master)
        check = session.exec(select(schema.KeyCheck).where(schema.KeyCheck.id == 1)).one()
        check.check_value = crypto.key_check_value(new_master)
        session.add(check)
        audit.rekey_head(session, db, crypto.derive_subkey(new_master, audit.HEAD_PURPOSE))
    db.keyring = Keyring(new_master)
    return count


def _check_master_key(db: Database, master: bytes) -> None:
    expected = crypto.key_check_value(master)
    with db.transaction() as session:
        row = session.get(schema.KeyCheck, 1)
        if row is None:
            session.add(schema.KeyCheck(id=1, check_value=expected))
        elif row.check_value != expected:
            raise crypto.DecryptionError(
                "The master key does not match this database (wrong MASTER_KEY or key file)."
            )


def _remove_orphan_blobs(db: Database) -> None:
    # A crash between writing a blob and committing its scan, or between deleting a scan and
    # its blob, leaves a file that is unreadable without its row but still takes disk space.
    def referenced() -> list[str]:
        with db.transaction() as session:
            return list(session.exec(select(schema.Scan.blob_name)).all())

    removed = db.blobs.remove_orphans(referenced, ORPHAN_MIN_AGE_S)
    if removed:
        _LOG.warning(
            "Deleted %d orphaned image file(s) with no scan record, older than %d seconds.",
            len(removed),
            ORPHAN_MIN_AGE_S,
        )
