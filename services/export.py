"""A user's copy of their records, with the view of each scan and the validity of each result."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from core.scan_reading import ScanReading
from services.records import record_of
from services.validity import reading_for
from storage.actor import Actor
from storage.db import Database
from storage.export import export_user
from storage.profile import get_birth_year
from storage.scans import list_scans

if TYPE_CHECKING:  # importing the model layer loads torch; callers hand in a loaded classifier
    from models.inference import Classifier


@dataclass(frozen=True)
class _Exported:
    """The fields of an exported result that reading it for its patient needs."""

    probabilities: dict[str, float]
    thresholds: dict[str, float]
    population: str | None
    checkpoint_sha256: str
    abstained: bool


def reading_json(reading: ScanReading) -> dict[str, Any]:
    """A scan's reading as exported: what every page says of the scan, in plain values.

    Args:
        reading: The scan's reading (``core.scan_reading``).

    Returns:
        ``status``, ``headline``, ``reason``, ``plotted``, ``needs_attention``, ``flags`` and
        ``findings`` (per finding shown: ``value``, ``level``, ``flagged``, ``valid``,
        ``plotted``, ``note``; none when the scan has no number), ``model_version``.
    """
    return {
        "status": reading.status.value,
        "headline": reading.headline,
        "reason": reading.reason,
        "plotted": reading.plotted,
        "needs_attention": reading.needs_attention,
        "flags": list(reading.flags),
        "model_version": reading.model_version if reading.has_numbers else None,
        "findings": {
            item.finding: {
                "value": item.value,
                "level": item.threshold,
                "flagged": item.flagged,
                "valid": item.valid,
                "plotted": item.plotted,
                "note": item.note,
            }
            for item in reading.findings
        },
    }


def export_records(
    db: Database, actor: Actor, classifier: Classifier | None = None
) -> dict[str, Any]:
    """Everything the app holds about the actor, each scan with its reading.

    Each scan carries its ``view`` (``storage.export.export_user``) and its ``reading``
    (:func:`reading_json`), the one every page shows. Each stored result, older models'
    included, gets
    ``validity``, read for the patient as every page reads it
    (``services.validity.reading_for``): per finding, the patient's population, whether the
    finding was shown to work for it (``None`` when the age is not known), whom it was learned
    from and, when it does not hold, one plain sentence. A result where the model abstained has
    ``validity`` ``None``.

    Args:
        db: Database handle.
        actor: The user whose records are exported.
        classifier: The current model (its version picks the result read); None reads each
            scan's latest result.

    Returns:
        ``export_user``'s data with ``reading`` added to every scan and ``validity`` to every
        result.

    Raises:
        storage.policy.AccessDenied: The account is disabled.
        crypto.DecryptionError: A stored value fails its integrity check.
    """
    exported = export_user(db, actor)
    if not exported["scans"]:
        return exported
    birth_year = get_birth_year(db, actor, actor.user_id)
    record = record_of(
        list_scans(db, actor, actor.user_id), birth_year, classifier, patient_id=actor.user_id
    )
    for scan in exported["scans"]:
        scan["reading"] = reading_json(record.reading(scan["id"]))
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
