"""The audit trail as an administrator sees it: verifying the chain and listing its events
(``storage.audit``)."""

from __future__ import annotations

from storage.audit import AuditEntry, ChainReport, list_events, verify_chain

__all__ = ["AuditEntry", "ChainReport", "list_events", "verify_chain"]
