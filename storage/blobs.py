"""Encrypted image files, written atomically and durably, addressed by keys.

A key is a ``/``-separated name relative to the store, as an object store (S3) would use:
live blobs are ``<token>``, and blobs set aside by the orphan sweep are
``quarantine/<batch>/<token>`` (the batch is the sweep's UTC time and a random suffix).
Everything the store does is write, read, delete, list by prefix and move (rename), so
another backend only has to provide those five operations.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: Prefix of every quarantined key; a batch name follows, then the blob's own name.
QUARANTINE = "quarantine"

_TOKEN = r"[0-9a-f]{32}"
_NAME = re.compile(rf"^{_TOKEN}$")
#: A live blob, a left-over temporary file, or either of them in a quarantine batch.
_KEY = re.compile(rf"^(?:{QUARANTINE}/\d{{8}}T\d{{6}}Z-[0-9a-f]{{6}}/)?{_TOKEN}(?:\.tmp)?$")


@dataclass(frozen=True)
class BlobInfo:
    """One stored object as listed by :meth:`BlobStore.list_objects`.

    Attributes:
        key: Key of the object (see the module docstring).
        size: Size in bytes.
        modified: Last modification, seconds since the epoch.
    """

    key: str
    size: int
    modified: float

    @property
    def name(self) -> str:
        """The last part of the key: the blob's own name."""
        return self.key.rsplit("/", 1)[-1]

    @property
    def is_temporary(self) -> bool:
        """A write that never completed (no record can refer to it)."""
        return self.key.endswith(".tmp")


class BlobStore:
    """A directory of opaque, already-encrypted blobs named by random tokens.

    Names carry no information about the scan (no file name, date or owner).
    """

    def __init__(self, root: Path) -> None:
        """Create the store, making the directory (0700) if needed.

        Args:
            root: Directory holding the blobs.
        """
        self.root = root
        root.mkdir(parents=True, exist_ok=True, mode=0o700)

    @staticmethod
    def new_name() -> str:
        """A fresh random blob name."""
        return secrets.token_hex(16)

    def _path(self, key: str) -> Path:
        # Keys are checked against the only shapes this store creates, so no key can name a
        # path outside the store.
        if not _KEY.match(key):
            raise ValueError("Invalid blob name.")
        return self.root / key

    def _live_path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError("Invalid blob name.")
        return self.root / name

    def write(self, name: str, data: bytes) -> None:
        """Write a blob so that it is either absent or complete after a crash.

        Args:
            name: Name from :meth:`new_name`.
            data: Ciphertext.
        """
        path = self._live_path(name)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _sync_dir(self.root)

    def read(self, name: str) -> bytes:
        """The bytes of a live blob.

        Raises:
            FileNotFoundError: The blob is missing.
        """
        return self._live_path(name).read_bytes()

    def size(self, name: str) -> int:
        """The size in bytes of a live blob, 0 when it is missing."""
        try:
            return self._live_path(name).stat().st_size
        except FileNotFoundError:
            return 0

    def delete(self, key: str) -> None:
        """Remove an object if present (a live blob, or a quarantined one when purging)."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        _sync_dir(path.parent)

    def list_objects(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Objects whose key starts with ``prefix``, in key order.

        Files whose names this store never creates are left out (and never touched).

        Args:
            prefix: Key prefix: ``""`` for everything, :data:`QUARANTINE` for the quarantine.

        Yields:
            One :class:`BlobInfo` per object.
        """
        found = []
        for path in self.root.rglob("*"):
            key = path.relative_to(self.root).as_posix()
            if not key.startswith(prefix) or not _KEY.match(key):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found.append(BlobInfo(key, stat.st_size, stat.st_mtime))
        yield from sorted(found, key=lambda info: info.key)

    def live(self) -> Iterator[BlobInfo]:
        """Objects outside the quarantine: blobs in use or waiting for the sweep."""
        return (info for info in self.list_objects() if "/" not in info.key)

    def move(self, source: str, target: str) -> None:
        """Rename an object, keeping its modification time.

        Args:
            source: Existing key.
            target: New key; must not exist.

        Raises:
            FileExistsError: ``target`` already exists.
            FileNotFoundError: ``source`` does not exist.
        """
        src, dst = self._path(source), self._path(target)
        if dst.exists():
            raise FileExistsError(target)
        dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.rename(src, dst)
        _sync_dir(dst.parent)
        if dst.parent != src.parent:
            _sync_dir(src.parent)


def quarantine_key(batch: str, name: str) -> str:
    """The key a live blob ``name`` gets when quarantined in ``batch``."""
    return f"{QUARANTINE}/{batch}/{name}"


def _sync_dir(directory: Path) -> None:
    # A rename or unlink is only durable once the directory entry itself is flushed.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
