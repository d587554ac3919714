"""Sealing and opening the encrypted values of one owner's rows.

Every sealed value is bound (as AES-GCM associated data) to its table, row id, owner and
data-key version, so a ciphertext copied to another row, another table or another user's
record fails to open instead of decrypting. This is the one place that builds that binding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from storage import crypto


class RowSealer:
    """Every version of one owner's data key, sealing and opening that owner's rows."""

    def __init__(self, owner_id: int, keys: Mapping[int, bytes]) -> None:
        """Prepare one cipher per key version.

        Args:
            owner_id: The user whose data keys these are (bound into every ciphertext).
            keys: ``{version: raw data key}``, at least one version.
        """
        self.owner_id = owner_id
        self._ciphers = {version: crypto.Cipher(key) for version, key in keys.items()}

    @property
    def version(self) -> int:
        """The key version new rows are sealed with (the newest)."""
        return max(self._ciphers)

    def seal(self, table: str, row_id: int, version: int, data: bytes) -> bytes:
        """Encrypt bytes belonging to one row.

        Args:
            table: Table (or ``blob``) the ciphertext belongs to.
            row_id: Primary key of the row.
            version: Key version recorded in the row.
            data: Plaintext.

        Returns:
            ``nonce || ciphertext``.

        Raises:
            crypto.DecryptionError: The owner has no key of that version.
        """
        return self._cipher(version).seal(data, self._aad(table, row_id, version))

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
            crypto.DecryptionError: Unknown key version, altered bytes, or a ciphertext sealed
                for another row, table, owner or version.
        """
        return self._cipher(version).open(sealed, self._aad(table, row_id, version))

    def seal_json(self, table: str, row_id: int, version: int, value: Any) -> bytes:
        """Encrypt a JSON-serialisable value belonging to one row (see :meth:`seal`)."""
        return self.seal(table, row_id, version, json.dumps(value, separators=(",", ":")).encode())

    def open_json(self, table: str, row_id: int, version: int, sealed: bytes | None) -> Any:
        """Decrypt a value sealed by :meth:`seal_json` for the same row (see :meth:`open`)."""
        return json.loads(self.open(table, row_id, version, sealed))

    def _cipher(self, version: int) -> crypto.Cipher:
        try:
            return self._ciphers[version]
        except KeyError as exc:
            raise crypto.DecryptionError(
                "A record was sealed with an unknown key version."
            ) from exc

    def _aad(self, table: str, row_id: int, version: int) -> bytes:
        return crypto.associated_data(table, row_id, self.owner_id, version)
