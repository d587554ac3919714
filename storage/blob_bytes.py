"""What a user's blobs take, for the storage quota, read from the rows that name them."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage import schema
from storage.db import Database

#: The rows that name a blob of the user's.
_Blobbed = TypeVar("_Blobbed", schema.Scan, schema.ScanOriginal)


def stored(
    session: Session,
    db: Database,
    model: type[_Blobbed],
    owner_id: int,
) -> int:
    """Bytes the owner's blobs of one kind take (scans' images or kept originals).

    Rows stored before sizes were recorded are measured in the blob store once and their size
    written back in the caller's transaction, so later checks never ask the store (with S3,
    one request per blob) again.

    Args:
        session: The caller's open session.
        db: Database handle (its blob store measures unrecorded rows).
        model: :class:`schema.Scan` or :class:`schema.ScanOriginal`.
        owner_id: Whose blobs.

    Returns:
        The total size in bytes.
    """
    owned = col(model.owner_id) == owner_id
    recorded = session.exec(select(func.coalesce(func.sum(model.blob_bytes), 0)).where(owned))
    total = int(recorded.one() or 0)
    unsized = select(model).where(owned, col(model.blob_bytes).is_(None))
    for row in session.exec(unsized):
        size = db.blobs.size(row.blob_name)
        row.blob_bytes = size
        session.add(row)
        total += size
    return total
