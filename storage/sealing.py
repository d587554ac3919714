"""Sealing and opening the encrypted values of one owner's rows.

Every sealed value is bound (as AES-GCM associated data) to its table, row id, owner,
data-key version and row version, so a ciphertext copied to another row, another table or
another user's record, or an older value of the same row, fails to open instead of
decrypting. This is the one place that builds that binding; :mod:`storage.versions` keeps
the row versions and checks that they are the committed ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from storage import crypto
from storage.evidence import IntegrityFailure
from storage.versions import RowVersions

_TAMPERED = (
    "A stored record failed its integrity check (altered, moved, or an older copy put "
    "back), so it was not opened."
)


class RowSealer:
    """Every version of one owner's data key, sealing and opening that owner's rows."""

    def __init__(
        self, owner_id: int, keys: Mapping[int, bytes], rows: RowVersions | None = None
    ) -> None:
        """Prepare one cipher per key version.

        Args:
            owner_id: The user whose data keys these are (bound into every ciphertext).
            keys: ``{version: raw data key}``, at least one version.
            rows: The owner's checked row versions (:func:`storage.versions.checked`); none
                for values that never reach the database.
        """
        self.owner_id = owner_id
        self.rows = rows if rows is not None else RowVersions(owner_id)
        self._ciphers = {version: crypto.Cipher(key) for version, key in keys.items()}
        self._mac_keys = {
            version: crypto.derive_subkey(key, "content-mac") for version, key in keys.items()
        }

    @property
    def version(self) -> int:
        """The key version new rows are sealed with (the newest)."""
        return max(self._ciphers)

    def seal(self, table: str, row_id: int, version: int, data: bytes) -> bytes:
        """Encrypt bytes belonging to one row, under a fresh row version.

        Args:
            table: Table (or ``blob``) the ciphertext belongs to.
            row_id: Primary key of the row.
            version: Key version recorded in the row.
            data: Plaintext.

        Returns:
            ``nonce || ciphertext``; store it in the same transaction (any earlier value of
            the row no longer opens once it commits).

        Raises:
            crypto.DecryptionError: The owner has no key of that version.
        """
        cipher = self._cipher(version)
        row_version = self.rows.take(table, row_id)
        return cipher.seal(data, self._aad(table, row_id, version, row_version))

    def open(self, table: str, row_id: int, version: int, sealed: bytes | None) -> bytes:
        """Decrypt bytes sealed by :meth:`seal` for the same row.

        Args:
            table: Table (or ``blob``) the ciphertext belongs to.
            row_id: Primary key of the row.
            version: Key version recorded in the row.
            sealed: ``nonce || ciphertext``; ``None`` (a row never sealed) fails to open.

        Returns:
            The plaintext.

        Raises:
            IntegrityFailure: Unknown key version, altered bytes, or a ciphertext sealed
                for another row, table, owner, key version or row version (an older value).
        """
        row_version = self.rows.of(table, row_id)
        try:
            if row_version is None:
                raise crypto.DecryptionError("The record is not one of this owner's.")
            return self._cipher(version).open(
                sealed, self._aad(table, row_id, version, row_version)
            )
        except IntegrityFailure:
            raise
        except crypto.DecryptionError as exc:
            raise IntegrityFailure(
                _TAMPERED, owner_id=self.owner_id, table=table, row_id=row_id, reason=str(exc)
            ) from exc

    def seal_json(self, table: str, row_id: int, version: int, value: Any) -> bytes:
        """Encrypt a JSON-serialisable value belonging to one row (see :meth:`seal`)."""
        return self.seal(table, row_id, version, json.dumps(value, separators=(",", ":")).encode())

    def open_json(self, table: str, row_id: int, version: int, sealed: bytes | None) -> Any:
        """Decrypt a value sealed by :meth:`seal_json` for the same row (see :meth:`open`)."""
        return json.loads(self.open(table, row_id, version, sealed))

    def content_macs(self, data: bytes) -> list[str]:
        """Keyed hashes of ``data``, one per key version, the newest version's first.

        An HMAC-SHA256 under a key derived from the owner's data key: equal files of one
        owner give equal values, but someone without the key cannot tell which file a value
        stands for (a bare SHA-256 would let them confirm a known image).

        Args:
            data: The bytes to recognise later (a file's content).

        Returns:
            Hex digests; store the first, look up all (older key versions' values included).
        """
        return [
            hmac.new(self._mac_keys[version], data, hashlib.sha256).hexdigest()
            for version in sorted(self._mac_keys, reverse=True)
        ]

    def _cipher(self, version: int) -> crypto.Cipher:
        try:
            return self._ciphers[version]
        except KeyError as exc:
            raise crypto.DecryptionError(
                "A record was sealed with an unknown key version."
            ) from exc

    def _aad(self, table: str, row_id: int, version: int, row_version: int) -> bytes:
        return crypto.associated_data(table, row_id, self.owner_id, version, row_version)
