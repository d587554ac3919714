"""The orphan sweep and its quarantine: image files without a record are set aside, never deleted.

A crash between writing a blob and committing its scan (or between deleting a scan and its
blob) leaves a file (or an object in the bucket) no record refers to. The sweep moves such files to
``quarantine/<batch>/`` in the blob store, where an operator can list them, move them back,
or purge them with an explicit, audited command; nothing here deletes a blob.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.words import plural
from storage.blobs import QUARANTINE, BlobStore, quarantine_key

_LOG = logging.getLogger(__name__)

#: Orphans are quarantined only once they are this old. ``save_scan`` writes the blob inside
#: its transaction, before the commit, and no process can see another's open transactions;
#: a transaction lasts seconds (the lock timeout is 30 s) but a stalled process (a suspended
#: machine, a paused debugger, a long import) can hold one far longer, so the bound is set
#: far beyond any transaction that could still commit.
ORPHAN_MIN_AGE = timedelta(hours=24)

_BATCH_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class QuarantinedBlob:
    """One file in the quarantine.

    Attributes:
        batch: The sweep that moved it (its UTC time, plus a suffix).
        name: The blob's own name (the name it is restored under).
        size: Size in bytes.
        quarantined_at: When the sweep ran.
    """

    batch: str
    name: str
    size: int
    quarantined_at: datetime

    @property
    def key(self) -> str:
        """Its key in the blob store."""
        return quarantine_key(self.batch, self.name)


def sweep(
    blobs: BlobStore,
    referenced: Callable[[], Iterable[str]],
    *,
    min_age: timedelta = ORPHAN_MIN_AGE,
    oldest_open: Callable[[], datetime | None] = lambda: None,
) -> list[QuarantinedBlob]:
    """Move blobs (and left-over temporary files) that no record refers to into a new batch.

    The store is listed first, then ``oldest_open``, then ``referenced`` is asked: a blob
    listed is either referenced by then, or its transaction was still open when
    ``oldest_open`` answered (so it is no older than that answer), or it never committed.
    Files younger than ``min_age``, or modified after the oldest open transaction began,
    are never candidates.

    Args:
        blobs: The blob store.
        referenced: Returns the blob names that records refer to.
        min_age: Minimum age (since last modification) of a moved file.
        oldest_open: Returns when the oldest transaction still open on the database began
            (another app server may be about to commit a blob it wrote), ``None`` when
            the database cannot tell.

    Returns:
        The files moved, empty when there were none.
    """
    now = datetime.now(UTC)
    cutoff = (now - min_age).timestamp()
    candidates = [info for info in blobs.live() if info.modified < cutoff]
    if not candidates:
        return []
    open_since = oldest_open()
    if open_since is not None:
        candidates = [info for info in candidates if info.modified < open_since.timestamp()]
    known = set(referenced())
    batch = f"{now.strftime(_BATCH_FORMAT)}-{secrets.token_hex(3)}"
    moved = []
    for info in candidates:
        if info.name in known:
            continue
        try:
            blobs.move(info.key, quarantine_key(batch, info.name))
        except FileNotFoundError:
            continue  # removed meanwhile by the deletion of its scan
        moved.append(QuarantinedBlob(batch, info.name, info.size, now))
    if moved:
        _LOG.warning(
            "Moved %s with no scan record, older than %s, to %s; see the list-quarantine command.",
            plural(len(moved), "image file"),
            min_age,
            f"{blobs.location.rstrip('/')}/{QUARANTINE}/{batch}",
        )
    return moved


def entries(blobs: BlobStore) -> list[QuarantinedBlob]:
    """Everything in the quarantine, oldest batch first."""
    out = []
    for info in blobs.list_objects(QUARANTINE + "/"):
        _, batch, name = info.key.split("/")
        out.append(QuarantinedBlob(batch, name, info.size, _batch_time(batch)))
    return sorted(out, key=lambda e: (e.quarantined_at, e.batch, e.name))


def restore(blobs: BlobStore, entry: QuarantinedBlob) -> None:
    """Move a quarantined file back to where records look for it.

    Raises:
        FileExistsError: A live blob of that name exists.
    """
    blobs.move(entry.key, entry.name)


def purge(blobs: BlobStore, entry: QuarantinedBlob) -> None:
    """Delete a quarantined file for good (only ever on an operator's confirmed request)."""
    blobs.delete(entry.key)


def _batch_time(batch: str) -> datetime:
    return datetime.strptime(batch.split("-", 1)[0], _BATCH_FORMAT).replace(tzinfo=UTC)
