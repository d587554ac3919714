"""What a patient is shown about access to their records: who read them, and each password
reset by an administrator with the session after it (``storage.access_log``)."""

from __future__ import annotations

from storage.access_log import ResetNotice, access_log, reset_notices
from storage.policy import AccessDenied

__all__ = ["AccessDenied", "ResetNotice", "access_log", "reset_notices"]
