"""Recognising a file already saved: keyed hashes of scan files (``scan_contents`` rows).

Row-level helpers for :mod:`storage.scans`, which applies the policy and the audit; the value
stored is :meth:`storage.sealing.RowSealer.content_macs`, never a bare hash of the file.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from storage import schema
from storage.sealing import RowSealer


def find_copy(session: Session, sealer: RowSealer, content: bytes) -> tuple[int, datetime] | None:
    """The owner's scan saved from the same file, if any.

    Args:
        session: Open session.
        sealer: The owner's data keys.
        content: The file's bytes.

    Returns:
        ``(scan id, when it was saved)``, or None.
    """
    row = session.exec(
        select(schema.Scan.id, schema.Scan.created_at)
        .join(schema.ScanContent, col(schema.ScanContent.scan_id) == col(schema.Scan.id))
        .where(
            schema.ScanContent.owner_id == sealer.owner_id,
            col(schema.ScanContent.mac).in_(sealer.content_macs(content)),
        )
        .order_by(col(schema.Scan.id))
        .limit(1)
    ).first()
    return None if row is None else (schema.stored_id(row[0]), row[1])


def record(session: Session, sealer: RowSealer, scan_id: int, content: bytes) -> None:
    """Remember that ``scan_id`` was saved from ``content`` (in the caller's transaction)."""
    session.add(
        schema.ScanContent(
            scan_id=scan_id, owner_id=sealer.owner_id, mac=sealer.content_macs(content)[0]
        )
    )
