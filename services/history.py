"""A patient's own scans page: new notes, marking them read, the kept original, deleting a scan.

The scans themselves, their readings and images come from :mod:`services.records`.
"""

from __future__ import annotations

from storage.notes import mark_notes_read, unread_note_counts
from storage.scans import delete_scan, load_original

__all__ = ["delete_scan", "load_original", "mark_notes_read", "unread_note_counts"]
