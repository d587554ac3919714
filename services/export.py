"""A user's copy of their records, with the view of each scan and the validity of each result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from services.validity import reading_for
from storage.actor import Actor
from storage.db import Database
from storage.export import export_user
from storage.profile import get_birth_year


@dataclass(frozen=True)
class _Exported:
    """The fields of an exported result that reading it for its patient needs."""

    probabilities: dict[str, float]
    thresholds: dict[str, float]
    population: str | None
    checkpoint_sha256: str
    abstained: bool


def export_records(db: Database, actor: Actor) -> dict[str, Any]:
    """Everything the app holds about the actor, each result with the validity of its findings.

    Each scan carries its ``view`` (``storage.export.export_user``). Each stored result gets
    ``validity``, read for the patient as every page reads it
    (``services.validity.reading_for``): per finding, the patient's population, whether the
    finding was shown to work for it (``None`` when the age is not known), whom it was learned
    from and, when it does not hold, one plain sentence. A result where the model abstained has
    ``validity`` ``None``.

    Args:
        db: Database handle.
        actor: The user whose records are exported.

    Returns:
        ``export_user``'s data with ``validity`` added to every result.

    Raises:
        storage.policy.AccessDenied: The account is disabled.
        crypto.DecryptionError: A stored value fails its integrity check.
    """
    exported = export_user(db, actor)
    if not exported["scans"]:
        return exported
    birth_year = get_birth_year(db, actor, actor.user_id)
    for scan in exported["scans"]:
        scan_date = date.fromisoformat(scan["scan_date"])
        for result in scan["results"]:
            stored = _Exported(
                result["probabilities"],
                result["thresholds"],
                result.get("population"),
                result["checkpoint_sha256"],
                result["abstained"],
            )
            reading = reading_for(stored, scan_date=scan_date, birth_year=birth_year)
            result["validity"] = (
                None
                if reading is None
                else {
                    item.finding: {
                        "population": reading.population,
                        "valid": item.valid,
                        "learned_from": item.learned_from,
                        "note": item.note,
                    }
                    for item in reading.findings
                }
            )
    return exported
