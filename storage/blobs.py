"""Encrypted image blobs, addressed by keys, on local files or in an S3 bucket.

A key is a ``/``-separated name relative to the store, as an object store uses: live blobs
are ``<token>``, and blobs set aside by the orphan sweep are ``quarantine/<batch>/<token>``
(the batch is the sweep's UTC time and a random suffix). Everything a store does is write,
read, delete, list by prefix and move, so :class:`BlobStore` asks each backend for exactly
those: :class:`LocalBlobStore` (a directory, the default) and :class:`S3BlobStore` (a bucket,
for several app servers). Both hold only ciphertext; which one is used is the ``BLOB_URL``
setting (:func:`open_blob_store`).

Beside the images a store keeps the audit trail's anchors (:mod:`storage.audit_anchors`),
``audit-anchor/<key id>/<20-digit sequence number>``: small objects written once and never
replaced, moved or deleted by the app, outside everything the blob methods list or touch.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from core.errors import UserError
from core.settings import Settings

if TYPE_CHECKING:  # boto3 is imported only by a process that uses a bucket
    import boto3
    from botocore.client import BaseClient

_LOG = logging.getLogger(__name__)
_SESSION_LOCK = threading.Lock()

#: Prefix of every quarantined key; a batch name follows, then the blob's own name.
QUARANTINE = "quarantine"

_TOKEN = r"[0-9a-f]{32}"
_NAME = re.compile(rf"^{_TOKEN}$")
#: A live blob, a left-over temporary file, or either of them in a quarantine batch.
_KEY = re.compile(rf"^(?:{QUARANTINE}/\d{{8}}T\d{{6}}Z-[0-9a-f]{{6}}/)?{_TOKEN}(?:\.tmp)?$")
#: Prefix of the audit trail's anchors (see the module docstring).
ANCHORS = "audit-anchor"
_ANCHOR_FOLDER = re.compile(rf"^{ANCHORS}/[0-9a-f]{{16}}$")
_ANCHOR = re.compile(rf"^{ANCHORS}/[0-9a-f]{{16}}/\d{{20}}$")


class BlobStoreUnavailable(UserError):
    """The image store could not be reached or refused the request; nothing was changed."""

    code = "blob_store_unavailable"
    default_message = (
        "The image store cannot be reached right now, so nothing was saved; "
        "please try again in a minute."
    )


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


class BlobStore(ABC):
    """Opaque, already-encrypted blobs named by random tokens.

    Names carry no information about the scan (no file name, date or owner). Writes are
    all-or-nothing: after a crash a blob is absent or complete.
    """

    #: Where the blobs are, for operators' messages (a folder, or ``s3://bucket/prefix``).
    location: str

    @staticmethod
    def new_name() -> str:
        """A fresh random blob name."""
        return secrets.token_hex(16)

    @abstractmethod
    def write(self, name: str, data: bytes) -> None:
        """Store a live blob so that it is either absent or complete after a crash.

        Args:
            name: Name from :meth:`new_name`.
            data: Ciphertext.

        Raises:
            BlobStoreUnavailable: The store could not take it.
        """

    @abstractmethod
    def read(self, name: str) -> bytes:
        """The bytes of a live blob.

        Raises:
            FileNotFoundError: The blob is missing.
            BlobStoreUnavailable: The store could not be reached.
        """

    @abstractmethod
    def size(self, name: str) -> int:
        """The size in bytes of a live blob, 0 when it is missing."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object if present (a live blob, or a quarantined one when purging)."""

    @abstractmethod
    def list_objects(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Objects whose key starts with ``prefix``, in key order.

        Objects whose names this store never creates are left out (and never touched).

        Args:
            prefix: Key prefix: ``""`` for everything, ``quarantine/`` for the quarantine.

        Yields:
            One :class:`BlobInfo` per object.
        """

    @abstractmethod
    def move(self, source: str, target: str) -> None:
        """Give an object a new key.

        Args:
            source: Existing key.
            target: New key; must not exist.

        Raises:
            FileExistsError: ``target`` already exists.
            FileNotFoundError: ``source`` does not exist.
        """

    @abstractmethod
    def write_anchor(self, key: str, data: bytes) -> None:
        """Store an anchor under a key that must not exist yet; an anchor is never replaced.

        Args:
            key: ``audit-anchor/<key id>/<20-digit sequence number>``.
            data: The anchor's bytes.

        Raises:
            FileExistsError: An anchor with this key exists (it is left as it was).
            BlobStoreUnavailable: The store could not take it.
        """

    @abstractmethod
    def read_anchor(self, key: str) -> bytes | None:
        """The bytes of an anchor, ``None`` when there is none under ``key``.

        Raises:
            BlobStoreUnavailable: The store could not be reached.
        """

    @abstractmethod
    def anchors_after(self, folder: str, after: str) -> list[str]:
        """Keys of the anchors in ``folder`` that sort after ``after``, in order.

        Args:
            folder: ``audit-anchor/<key id>``.
            after: A key in that folder (need not exist).

        Raises:
            BlobStoreUnavailable: The store could not be reached.
        """

    def live(self) -> Iterator[BlobInfo]:
        """Objects outside the quarantine: blobs in use or waiting for the sweep."""
        return (info for info in self.list_objects() if "/" not in info.key)

    def discard(self, name: str) -> None:
        """Remove the blob of a save that did not commit, leaving it to the sweep on failure.

        Called while another error is on its way to the user: that error must not be replaced
        by a second one, and an object left behind is only an orphan (quarantined later).
        """
        try:
            self.delete(name)
        except (OSError, BlobStoreUnavailable):
            _LOG.warning("Could not remove blob %s of a failed save; the sweep will.", name)


def open_blob_store(settings: Settings) -> BlobStore:
    """The store ``settings.blob_url`` names, checked to be reachable.

    Args:
        settings: ``blob_url`` (``file:///path`` or ``s3://bucket[/prefix]``) and, for a
            bucket, the ``s3_*`` endpoint, region and credentials.

    Raises:
        BlobStoreUnavailable: The bucket cannot be reached with these settings.
    """
    if settings.blob_dir is not None:
        return LocalBlobStore(settings.blob_dir)
    parts = urlsplit(settings.blob_url)
    return S3BlobStore.connect(settings, parts.netloc, parts.path.strip("/"))


class LocalBlobStore(BlobStore):
    """A directory of blob files, written atomically and durably (the embedded default)."""

    def __init__(self, root: Path) -> None:
        """Create the store, making the directory (0700) if needed.

        Args:
            root: Directory holding the blobs.
        """
        self.root = root
        self.location = str(root)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)

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

    def _anchor_path(self, key: str) -> Path:
        if not _ANCHOR.match(key):
            raise ValueError("Invalid anchor name.")
        return self.root / key

    def write(self, name: str, data: bytes) -> None:
        """See :meth:`BlobStore.write`: a temporary file, fsync, rename, directory fsync."""
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
        """See :meth:`BlobStore.read`."""
        return self._live_path(name).read_bytes()

    def size(self, name: str) -> int:
        """See :meth:`BlobStore.size`."""
        try:
            return self._live_path(name).stat().st_size
        except FileNotFoundError:
            return 0

    def delete(self, key: str) -> None:
        """See :meth:`BlobStore.delete`."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        _sync_dir(path.parent)

    def list_objects(self, prefix: str = "") -> Iterator[BlobInfo]:
        """See :meth:`BlobStore.list_objects`."""
        found = []
        for folder, subfolders, files in os.walk(self.root):
            # One anchor per audit event: walking them would make every sweep as slow as
            # the trail is long, and no key there is a blob's.
            if Path(folder) == self.root and ANCHORS in subfolders:
                subfolders.remove(ANCHORS)
            for file in files:
                path = Path(folder, file)
                key = path.relative_to(self.root).as_posix()
                if not key.startswith(prefix) or not _KEY.match(key):
                    continue
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                found.append(BlobInfo(key, stat.st_size, stat.st_mtime))
        yield from sorted(found, key=lambda info: info.key)

    def move(self, source: str, target: str) -> None:
        """See :meth:`BlobStore.move`; a rename, so the modification time is kept."""
        src, dst = self._path(source), self._path(target)
        if dst.exists():
            raise FileExistsError(target)
        dst.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.rename(src, dst)
        _sync_dir(dst.parent)
        if dst.parent != src.parent:
            _sync_dir(src.parent)

    def write_anchor(self, key: str, data: bytes) -> None:
        """See :meth:`BlobStore.write_anchor`: a temporary file hard-linked to its name.

        ``link`` fails when the name exists, so an anchor appears whole and only once. There
        is no fsync: an anchor lost or left empty by a power cut only protects less (the
        next one covers the events before it), and its event is already durable.
        """
        path = self._anchor_path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def read_anchor(self, key: str) -> bytes | None:
        """See :meth:`BlobStore.read_anchor`."""
        try:
            return self._anchor_path(key).read_bytes()
        except FileNotFoundError:
            return None

    def anchors_after(self, folder: str, after: str) -> list[str]:
        """See :meth:`BlobStore.anchors_after`."""
        if not _ANCHOR_FOLDER.match(folder):
            raise ValueError("Invalid anchor folder.")
        try:
            names = os.listdir(self.root / folder)
        except FileNotFoundError:
            return []
        keys = (f"{folder}/{name}" for name in names)
        return sorted(key for key in keys if key > after and _ANCHOR.match(key))


@cache
def _boto3_session() -> boto3.session.Session:
    """One boto3 session per process: making one reads botocore's service models from disk
    (a quarter of a second); it holds no credentials (each client is given its own)."""
    import boto3

    return boto3.session.Session()


class S3BlobStore(BlobStore):
    """Blobs as objects in an S3 bucket (any S3 server: AWS, SeaweedFS, MinIO, Ceph).

    Several app servers share one bucket. A PUT is atomic (the object appears whole or not
    at all), so no temporary object is needed. A move is a conditional copy (refused when
    the target exists) followed by a delete; a crash between them leaves both copies, never
    neither.
    """

    #: Every request is retried (with backoff) over a short outage of the store before the
    #: user is told; a refused connection fails fast, so this bounds the wait to seconds.
    _RETRIES = {"mode": "standard", "max_attempts": 5}

    def __init__(self, client: BaseClient, bucket: str, prefix: str = "") -> None:
        """Use ``bucket`` through ``client``; keys are stored under ``prefix/`` if given.

        Args:
            client: A boto3 S3 client.
            bucket: Bucket name.
            prefix: Folder inside the bucket (lets several deployments share one bucket).
        """
        self._client = client
        self._bucket = bucket
        self._prefix = f"{prefix}/" if prefix else ""
        self.location = f"s3://{bucket}/{self._prefix}"
        # Blobs never change once written, so a size once seen stays true; this keeps the
        # per-upload quota check from asking the store about every earlier scan each time.
        self._sizes: dict[str, int] = {}

    @classmethod
    def connect(cls, settings: Settings, bucket: str, prefix: str = "") -> S3BlobStore:
        """A store on ``bucket`` with the endpoint, region and credentials of ``settings``.

        Raises:
            BlobStoreUnavailable: The bucket is missing or refuses these credentials.
        """
        from botocore.config import Config

        # A session is not thread-safe, its clients are: one session, clients made under a lock.
        with _SESSION_LOCK:
            client = _boto3_session().client(
                "s3",
                endpoint_url=settings.s3_endpoint_url,
                region_name=settings.s3_region,
                aws_access_key_id=settings.s3_access_key_id,
                aws_secret_access_key=settings.s3_secret_access_key,
                config=Config(
                    retries=cls._RETRIES,
                    connect_timeout=5,
                    read_timeout=30,
                    s3={"addressing_style": "path"},
                ),
            )
        store = cls(client, bucket, prefix)
        try:
            client.head_bucket(Bucket=bucket)
        except Exception as exc:
            raise BlobStoreUnavailable(
                f"The image bucket {store.location} cannot be used ({_describe(exc)}): check "
                "BLOB_URL, S3_ENDPOINT_URL and the AWS_* credentials."
            ) from exc
        return store

    def _key(self, key: str) -> str:
        if not _KEY.match(key):
            raise ValueError("Invalid blob name.")
        return self._prefix + key

    def _live_key(self, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError("Invalid blob name.")
        return self._prefix + name

    def _anchor_key(self, key: str) -> str:
        if not _ANCHOR.match(key):
            raise ValueError("Invalid anchor name.")
        return self._prefix + key

    def write(self, name: str, data: bytes) -> None:
        """See :meth:`BlobStore.write`: one PUT."""
        key = self._live_key(name)
        with _unavailable_on_failure():
            self._client.put_object(Bucket=self._bucket, Key=key, Body=data)
        self._sizes[name] = len(data)

    def read(self, name: str) -> bytes:
        """See :meth:`BlobStore.read`."""
        key = self._live_key(name)
        with _unavailable_on_failure():
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            return response["Body"].read()

    def size(self, name: str) -> int:
        """See :meth:`BlobStore.size`."""
        key = self._live_key(name)
        if name in self._sizes:
            return self._sizes[name]
        try:
            with _unavailable_on_failure():
                head = self._client.head_object(Bucket=self._bucket, Key=key)
        except FileNotFoundError:
            return 0
        size = int(head["ContentLength"])
        self._sizes[name] = size
        return size

    def delete(self, key: str) -> None:
        """See :meth:`BlobStore.delete`."""
        full = self._key(key)
        with _unavailable_on_failure():
            self._client.delete_object(Bucket=self._bucket, Key=full)
        self._sizes.pop(key, None)

    def list_objects(self, prefix: str = "") -> Iterator[BlobInfo]:
        """See :meth:`BlobStore.list_objects`; S3 lists keys in order already."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=self._prefix + prefix
        )
        with _unavailable_on_failure():
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(self._prefix) :]
                    if _KEY.match(key):
                        yield BlobInfo(key, int(item["Size"]), item["LastModified"].timestamp())

    def move(self, source: str, target: str) -> None:
        """See :meth:`BlobStore.move`; the copy is refused by the server if ``target`` exists.

        The moved object's modification time is the time of the move: a restored blob thus
        counts as young, and the sweep leaves it alone for another full waiting period.
        """
        src, dst = self._key(source), self._key(target)
        with _unavailable_on_failure():
            self._client.copy_object(
                Bucket=self._bucket,
                Key=dst,
                CopySource={"Bucket": self._bucket, "Key": src},
                IfNoneMatch="*",
            )
            self._client.delete_object(Bucket=self._bucket, Key=src)
        self._sizes.pop(source, None)

    def live(self) -> Iterator[BlobInfo]:
        """See :meth:`BlobStore.live`: only the top level is listed (the ``/`` delimiter), so
        neither the quarantine nor the audit anchors (one per event) are paged through."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=self._prefix, Delimiter="/"
        )
        with _unavailable_on_failure():
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(self._prefix) :]
                    if _KEY.match(key):
                        yield BlobInfo(key, int(item["Size"]), item["LastModified"].timestamp())

    def write_anchor(self, key: str, data: bytes) -> None:
        """See :meth:`BlobStore.write_anchor`: one PUT the server refuses if the key exists."""
        full = self._anchor_key(key)
        with _unavailable_on_failure():
            self._client.put_object(Bucket=self._bucket, Key=full, Body=data, IfNoneMatch="*")

    def read_anchor(self, key: str) -> bytes | None:
        """See :meth:`BlobStore.read_anchor`."""
        full = self._anchor_key(key)
        try:
            with _unavailable_on_failure():
                return self._client.get_object(Bucket=self._bucket, Key=full)["Body"].read()
        except FileNotFoundError:
            return None

    def anchors_after(self, folder: str, after: str) -> list[str]:
        """See :meth:`BlobStore.anchors_after`; S3 starts the listing after the given key."""
        if not _ANCHOR_FOLDER.match(folder):
            raise ValueError("Invalid anchor folder.")
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=f"{self._prefix}{folder}/", StartAfter=self._prefix + after
        )
        with _unavailable_on_failure():
            keys = [
                item["Key"][len(self._prefix) :]
                for page in pages
                for item in page.get("Contents", [])
            ]
        return [key for key in keys if _ANCHOR.match(key)]


@contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    """Turn the S3 client's errors into the store's: missing, existing, or unavailable."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in {"NoSuchKey", "404", "NotFound"}:
            raise FileNotFoundError(code) from exc
        # A conditional write that lost a race with another one is refused the same way.
        if code in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
            raise FileExistsError(code) from exc
        _LOG.warning("Image store request failed: %s", _describe(exc))
        raise BlobStoreUnavailable() from exc
    except BotoCoreError as exc:
        _LOG.warning("Image store request failed: %s", _describe(exc))
        raise BlobStoreUnavailable() from exc


def _describe(exc: BaseException) -> str:
    # botocore's own text names the endpoint and the error code, never the credentials.
    return f"{type(exc).__name__}: {exc}"


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
