"""Envelope encryption: a master key wraps one random data key per user; data keys seal records.

Every ciphertext is ``nonce (12 bytes) || AES-GCM ciphertext+tag``. The associated data names
the table, row id, owner, key version and row version, so a ciphertext copied to another
row, another table or another user's record, or an older copy of the same row, fails
authentication instead of decrypting.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import UserError
from core.settings import Settings

_LOG = logging.getLogger(__name__)

KEY_BYTES = 32
_NONCE_BYTES = 12
_TAMPERED = "Stored data failed its integrity check (wrong key, tampering or a moved record)."


class DecryptionError(Exception):
    """A ciphertext did not authenticate: wrong key, tampered bytes or data moved to another row."""


class MasterKeyError(UserError, ValueError):
    """The master key is missing, malformed or unreadable (a sentence for whoever runs the app)."""

    code = "master_key"
    default_message = "The master key is missing or not valid."


def associated_data(
    table: str, row_id: int, owner_id: int, key_version: int, row_version: int = 0
) -> bytes:
    """The bytes every ciphertext is bound to.

    Args:
        table: Table (or ``blob``) the ciphertext lives in.
        row_id: Primary key of the row the ciphertext belongs to.
        owner_id: The user whose data key sealed it.
        key_version: Version of that data key.
        row_version: The row's seal counter (see :mod:`storage.versions`); 0 for values
            sealed before rows had one, and for blobs, whose binding keeps that form.

    Returns:
        Canonical associated data for AES-GCM.
    """
    base = f"cxr|{table}|{row_id}|{owner_id}|{key_version}"
    return (base if row_version == 0 else f"{base}|r{row_version}").encode()


class Cipher:
    """One key's AES-GCM context, reused across many values (bulk sealing and opening)."""

    def __init__(self, key: bytes) -> None:
        """Prepare the cipher.

        Args:
            key: 32-byte AES key.
        """
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext``.

        Args:
            plaintext: Bytes to protect.
            aad: Associated data the ciphertext is bound to.

        Returns:
            ``nonce || ciphertext``.
        """
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes | None, aad: bytes) -> bytes:
        """Decrypt a value produced by :meth:`seal`.

        Args:
            blob: ``nonce || ciphertext``; ``None`` (a row never sealed) counts as truncated.
            aad: Associated data the ciphertext must be bound to.

        Returns:
            The plaintext.

        Raises:
            DecryptionError: The key is wrong, the bytes were altered or the ciphertext
                belongs to another row or owner.
        """
        if blob is None or len(blob) < _NONCE_BYTES + 16:
            raise DecryptionError("Stored data is truncated and cannot be decrypted.")
        try:
            return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise DecryptionError(_TAMPERED) from exc


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` under ``key`` (see :meth:`Cipher.seal`)."""
    return Cipher(key).seal(plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Decrypt a value produced by :func:`seal` (see :meth:`Cipher.open`).

    Raises:
        DecryptionError: The key is wrong, the bytes were altered or the ciphertext belongs
            to another row or owner.
    """
    return Cipher(key).open(blob, aad)


def new_data_key() -> bytes:
    """A fresh random 256-bit data key."""
    return secrets.token_bytes(KEY_BYTES)


def new_master_key() -> bytes:
    """A fresh random 256-bit master key."""
    return secrets.token_bytes(KEY_BYTES)


def wrap_key(master: bytes, data_key: bytes, user_id: int, version: int) -> bytes:
    """Wrap a user's data key with the master key (AES-GCM bound to the user and version)."""
    return seal(master, data_key, _wrap_aad(user_id, version))


def unwrap_key(master: bytes, wrapped: bytes, user_id: int, version: int) -> bytes:
    """Unwrap a data key.

    Raises:
        DecryptionError: The master key is wrong or the wrapped key was altered or moved.
    """
    return open_sealed(master, wrapped, _wrap_aad(user_id, version))


def _wrap_aad(user_id: int, version: int) -> bytes:
    return f"cxr|user_key|{user_id}|{version}".encode()


def derive_subkey(master: bytes, purpose: str) -> bytes:
    """A purpose-specific key derived from the master key (HMAC-SHA256 as a PRF).

    Args:
        master: The master key.
        purpose: Label separating uses (``audit-head``, ``key-check``).

    Returns:
        32 bytes that reveal nothing about the master key.
    """
    return hmac.new(master, f"cxr-subkey|{purpose}".encode(), hashlib.sha256).digest()


def key_check_value(master: bytes) -> str:
    """A public fingerprint that tells whether a master key is the one a database was made with."""
    return derive_subkey(master, "key-check").hex()


def decode_master_key(text: str) -> bytes:
    """Parse a base64 master key.

    Args:
        text: Base64 of exactly 32 bytes (surrounding whitespace ignored).

    Returns:
        The raw key.

    Raises:
        MasterKeyError: The text is not base64 of 32 bytes.
    """
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MasterKeyError("The master key is not valid base64.") from exc
    if len(raw) != KEY_BYTES:
        raise MasterKeyError(f"The master key must be {KEY_BYTES} bytes, got {len(raw)}.")
    return raw


def encode_master_key(raw: bytes) -> str:
    """Base64 text of a raw master key."""
    return base64.b64encode(raw).decode()


def load_master_key(settings: Settings) -> bytes:
    """The master key from ``MASTER_KEY`` or, for local use, from the key file.

    The key file is created on first start with mode 0600 and a warning, because a key lying
    beside the data it protects only guards against copies of the database alone.

    Args:
        settings: Application settings.

    Returns:
        The raw 32-byte master key.

    Raises:
        MasterKeyError: The configured key is malformed.
    """
    if settings.master_key:
        return decode_master_key(settings.master_key)
    path = settings.key_file
    if path.exists():
        return decode_master_key(path.read_text())
    raw = secrets.token_bytes(KEY_BYTES)
    write_key_file(path, raw)
    _LOG.warning(
        "MASTER_KEY is not set: created local key file %s. This is a local-only default; "
        "set MASTER_KEY from a secret store in any real deployment.",
        path,
    )
    return raw


def write_key_file(path: Path, raw: bytes) -> None:
    """Atomically write a master key file readable only by its owner (0600).

    Args:
        path: Destination.
        raw: The raw key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (encode_master_key(raw) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
