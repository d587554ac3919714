"""Classification results of scans, sealed with the scan owner's data key.

Results are written through :mod:`storage.scans` (with a new scan, or added to existing
ones); this module holds their values and the row-level reads and writes that apply no
access policy and no audit, which stay with the callers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlmodel import Session, select

from storage import schema
from storage.sealing import RowSealer

_TABLE = "results"


class PredictionLike(Protocol):
    """What :meth:`ResultIn.from_prediction` reads of ``models.inference.Prediction``.

    Read-only properties, so frozen dataclasses match and may declare narrower types.
    """

    @property
    def probabilities(self) -> Mapping[str, float]: ...

    @property
    def abstained(self) -> bool: ...

    @property
    def abstain_reason(self) -> str | None: ...

    @property
    def ood_score(self) -> float | None: ...

    @property
    def population(self) -> str: ...

    @property
    def thresholds(self) -> Mapping[str, float]: ...


class ModelInfoLike(Protocol):
    """What :meth:`ResultIn.from_prediction` reads of ``models.inference.ModelInfo``.

    Read-only properties, as in :class:`PredictionLike`.
    """

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def sha256(self) -> str: ...


@dataclass(frozen=True)
class ResultIn:
    """A classification to store (what the model layer produced)."""

    probabilities: dict[str, float]
    model_name: str
    model_version: str
    checkpoint_sha256: str
    abstained: bool = False
    abstain_reason: str | None = None
    ood_score: float | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    #: Whose calibration and thresholds were applied (``models.populations``); ``None`` for
    #: results stored before the model had populations.
    population: str | None = None

    @classmethod
    def from_prediction(cls, prediction: PredictionLike, info: ModelInfoLike) -> ResultIn:
        """The result to store for one model prediction (the one place that maps the two).

        Duck-typed so that storage never imports the model layer.

        Args:
            prediction: A ``models.inference.Prediction``.
            info: The ``Classifier.info`` (``ModelInfo``) of the model that made it.

        Returns:
            The result, with plain ``float`` probabilities and thresholds (copies, so later
            changes to the prediction or the model info do not alter it).
        """
        return cls(
            probabilities={name: float(p) for name, p in prediction.probabilities.items()},
            model_name=info.name,
            model_version=info.version,
            checkpoint_sha256=info.sha256,
            abstained=bool(prediction.abstained),
            abstain_reason=prediction.abstain_reason,
            ood_score=None if prediction.ood_score is None else float(prediction.ood_score),
            # The prediction's own thresholds: they depend on the patient's population.
            thresholds={name: float(t) for name, t in prediction.thresholds.items()},
            population=prediction.population,
        )

    def to_payload(self) -> dict[str, Any]:
        """JSON-safe dictionary of the fields (what gets sealed)."""
        return {
            "probabilities": {k: float(v) for k, v in self.probabilities.items()},
            "model_name": self.model_name,
            "model_version": self.model_version,
            "checkpoint_sha256": self.checkpoint_sha256,
            "abstained": bool(self.abstained),
            "abstain_reason": self.abstain_reason,
            "ood_score": None if self.ood_score is None else float(self.ood_score),
            "thresholds": {k: float(v) for k, v in self.thresholds.items()},
            "population": self.population,
        }


@dataclass(frozen=True, kw_only=True)
class ResultRecord(ResultIn):
    """A stored classification."""

    id: int
    scan_id: int
    created_at: datetime


def results_by_scan(
    session: Session, sealer: RowSealer, scan_ids: list[int] | None
) -> dict[int, list[ResultRecord]]:
    """Decrypted results of one owner's scans, grouped by scan id, oldest first.

    For storage modules only: no access check or audit here, the caller applies both.

    Args:
        session: The caller's open session.
        sealer: The data keys of the patient whose results are read.
        scan_ids: Only these scans; ``None`` for all of the owner's scans.

    Returns:
        ``{scan_id: [ResultRecord, ...]}``; scans without results are absent.

    Raises:
        crypto.DecryptionError: A result fails its integrity check or names an unknown key version.
    """
    table = schema.table_of(schema.Result)
    # Plain columns rather than ORM objects: listing a long history decrypts every result.
    query = (
        # sqlmodel.select is typed for at most four columns; this one selects five.
        select(  # type: ignore[call-overload]
            table.c.id, table.c.scan_id, table.c.key_version, table.c.payload, table.c.created_at
        )
        .where(table.c.owner_id == sealer.owner_id)
        .order_by(table.c.id)
    )
    if scan_ids is not None:
        if not scan_ids:
            return {}
        query = query.where(table.c.scan_id.in_(scan_ids))
    grouped: dict[int, list[ResultRecord]] = {}
    for row_id, scan_id, version, payload, created_at in session.exec(query):
        body = sealer.open_json(_TABLE, row_id, version, payload)
        grouped.setdefault(scan_id, []).append(
            ResultRecord(**body, id=row_id, scan_id=scan_id, created_at=created_at)
        )
    return grouped


def insert_result(session: Session, sealer: RowSealer, scan: schema.Scan, result: ResultIn) -> int:
    """Seal and insert one result of a scan (no access check or audit: the caller applies both).

    Args:
        session: The caller's open session.
        sealer: The data keys of the scan's owner.
        scan: The scan classified.
        result: The classification.

    Returns:
        The new result id.

    Raises:
        ValueError: A probability is not a finite number.
    """
    bad = [k for k, v in result.probabilities.items() if not math.isfinite(float(v))]
    if bad:
        raise ValueError(f"Probabilities must be finite numbers (got {bad}).")
    row = schema.Result(
        scan_id=schema.stored_id(scan.id), owner_id=scan.owner_id, key_version=sealer.version
    )
    session.add(row)
    session.flush()
    row_id = schema.stored_id(row.id)
    row.payload = sealer.seal_json(_TABLE, row_id, row.key_version, result.to_payload())
    session.add(row)
    session.flush()
    return row_id
