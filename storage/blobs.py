"""Encrypted image files on disk, written atomically and durably."""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path

_NAME = re.compile(r"^[0-9a-f]{32}$")
_TMP = re.compile(r"^[0-9a-f]{32}\.tmp$")


class BlobStore:
    """A flat directory of opaque, already-encrypted blobs named by random tokens.

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

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError("Invalid blob name.")
        return self.root / name

    def write(self, name: str, data: bytes) -> None:
        """Write a blob so that it is either absent or complete after a crash.

        Args:
            name: Name from :meth:`new_name`.
            data: Ciphertext.
        """
        path = self._path(name)
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
        self._sync_dir()

    def read(self, name: str) -> bytes:
        """The bytes of a blob.

        Raises:
            FileNotFoundError: The blob is missing.
        """
        return self._path(name).read_bytes()

    def delete(self, name: str) -> None:
        """Remove a blob if present."""
        self._path(name).unlink(missing_ok=True)
        self._sync_dir()

    def remove_orphans(self, known: Callable[[], Iterable[str]], min_age_s: float) -> list[str]:
        """Delete blobs (and left-over temporary files) that no record refers to.

        Only files older than ``min_age_s`` are candidates, so a blob whose record is still
        being committed by another session or process is never touched. The directory is
        listed before ``known`` is asked, so a record committed in between is respected.
        Files whose names this store never creates are left alone.

        Args:
            known: Returns the blob names that records refer to.
            min_age_s: Minimum age (seconds since last modification) of a deleted file.

        Returns:
            Names of the deleted files.
        """
        cutoff = time.time() - min_age_s
        candidates = []
        for path in self.root.iterdir():
            if not (_NAME.match(path.name) or _TMP.match(path.name)):
                continue
            try:
                if path.stat().st_mtime < cutoff:
                    candidates.append(path)
            except FileNotFoundError:
                continue
        if not candidates:
            return []
        referenced = set(known())
        removed = []
        for path in candidates:
            if path.name not in referenced:
                path.unlink(missing_ok=True)
                removed.append(path.name)
        if removed:
            self._sync_dir()
        return removed

    def _sync_dir(self) -> None:
        # A rename or unlink is only durable once the directory entry itself is flushed.
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
