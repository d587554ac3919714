"""Errors whose evidence must outlive the rollback of the transaction that raised them.

Kept below :mod:`storage.db` so that the key and sealing modules, which ``db`` imports, can
raise them too; :meth:`storage.db.Database.transaction` records them once it rolled back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from storage.crypto import DecryptionError


class RecordAfterRollback(Exception):
    """An error whose evidence must outlive the rollback of the transaction that raised it."""

    def record(self, db: Any) -> None:
        """Write the evidence in a transaction of its own (called after the rollback)."""
        raise NotImplementedError


class _Recorder(Protocol):
    on_integrity_failure: Callable[[IntegrityFailure], None] | None


class IntegrityFailure(DecryptionError, RecordAfterRollback):
    """A sealed record failed its check: altered, moved, or rolled back to an older copy.

    Attributes:
        owner_id: Whose records.
        table: The table of the record (``None`` when the check covers all of them).
        row_id: The record (``None`` when the check covers all of them).
        reason: What was found, for the audit trail (no medical data).
    """

    def __init__(
        self, message: str, *, owner_id: int, table: str | None, row_id: int | None, reason: str
    ) -> None:
        super().__init__(message)
        self.owner_id = owner_id
        self.table = table
        self.row_id = row_id
        self.reason = reason

    def record(self, db: _Recorder) -> None:
        """Hand the failure to the database's recorder (the audit trail, see bootstrap)."""
        if db.on_integrity_failure is not None:
            db.on_integrity_failure(self)
