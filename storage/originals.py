"""Original upload files, kept only when the patient asks: sealed blobs beside the working image.

A scan keeps its pixels at the working resolution (:mod:`storage.pixels`); a patient may ask
at upload to keep the file they uploaded too, byte for byte. It is sealed with their data key
(bound, as associated data, to the scan and the key version) and stored as a second blob,
written before the scan commits like the image; its ``scan_originals`` row goes with the scan.

Row-level helpers for :mod:`storage.scans` and :mod:`storage.rekey`, which apply the policy
and the audit.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from storage import schema
from storage.db import Database
from storage.sealing import RowSealer

#: The associated-data table name of an original file's blob.
BLOB_TABLE = "original"


def seal(sealer: RowSealer, scan_id: int, data: bytes) -> bytes:
    """The sealed blob of a scan's original file, under the owner's newest key version."""
    return sealer.seal(BLOB_TABLE, scan_id, sealer.version, data)


def keep(session: Session, db: Database, scan: schema.Scan, sealed: bytes) -> str:
    """Write the sealed original as a new blob and record it (in the caller's transaction).

    Args:
        session: The caller's open session.
        db: Database handle.
        scan: The scan, flushed.
        sealed: What :func:`seal` returned for it.

    Returns:
        The new blob's name (for the caller to discard if the transaction fails).
    """
    name = db.blobs.new_name()
    db.blobs.write(name, sealed)
    session.add(
        schema.ScanOriginal(
            scan_id=schema.stored_id(scan.id),
            owner_id=scan.owner_id,
            key_version=scan.key_version,
            blob_name=name,
            blob_bytes=len(sealed),
        )
    )
    return name


def open_kept(db: Database, sealer: RowSealer, row: schema.ScanOriginal) -> bytes:
    """The original file's bytes.

    Raises:
        crypto.DecryptionError: The blob fails its integrity check.
        FileNotFoundError: The blob is missing.
    """
    return sealer.open(BLOB_TABLE, row.scan_id, row.key_version, db.blobs.read(row.blob_name))


def of_scan(session: Session, scan_id: int) -> schema.ScanOriginal | None:
    """The original kept for a scan, if the patient asked for one."""
    return session.get(schema.ScanOriginal, scan_id)


def blob_names(session: Session) -> list[str]:
    """Every kept original's blob (records refer to them: the orphan sweep leaves them)."""
    return list(session.exec(select(col(schema.ScanOriginal.blob_name))).all())
