"""De-identified aggregates over every stored result, for analysts only.

Results are decrypted here, reduced to ``user_id, month, age_band, sex, finding`` rows and
handed to :func:`core.cohort.aggregate_cohort`, which drops the user ids and suppresses
groups of fewer than ten people. Only the aggregate leaves this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlmodel import select

from core.cohort import aggregate_cohort
from core.eda import age_band
from storage import audit, crypto, policy, schema
from storage.db import Actor, Database

#: Threshold for a flagged finding when a result carries none.
DEFAULT_THRESHOLD = 0.5
NO_FINDING = "none"
ABSTAINED = "abstained"


def cohort_summary(db: Database, actor: Actor, by: Sequence[str]) -> pd.DataFrame:
    """Counts of results per group (see :func:`core.cohort.aggregate_cohort`).

    Args:
        db: Database handle.
        actor: An analyst.
        by: Grouping columns among ``finding``, ``month``, ``age_band``, ``sex``.

    Returns:
        One row per group with ``count`` and ``users`` as strings (``"<10"`` when fewer than
        ten people are in the group).

    Raises:
        policy.AccessDenied: The actor is not an active analyst.
        ValueError: ``by`` names an unknown column.
    """
    policy.require_role(actor, schema.Role.ANALYST)
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        rows = []
        owners = session.exec(select(schema.Scan.owner_id).distinct()).all()
        for owner_id in owners:
            keys = db.data_keys(session, owner_id)
            scans = {}
            for scan in session.exec(select(schema.Scan).where(schema.Scan.owner_id == owner_id)):
                aad = crypto.associated_data("scans", scan.id, owner_id, scan.key_version)
                scans[scan.id] = crypto.open_json(keys[scan.key_version], scan.payload, aad)
            for result in session.exec(
                select(schema.Result).where(schema.Result.owner_id == owner_id)
            ):
                aad = crypto.associated_data("results", result.id, owner_id, result.key_version)
                body = crypto.open_json(keys[result.key_version], result.payload, aad)
                rows.extend(_rows(owner_id, scans[result.scan_id], body))
        table = _aggregate(rows, by)
        audit.append(session, db, "cohort_summary", actor=actor,
                     details={"by": list(by), "groups": len(table)})
    return table


def _rows(owner_id: int, scan: dict, result: dict) -> list[dict]:
    metadata = scan.get("metadata") or {}
    base = {
        "user_id": owner_id,
        "month": scan["scan_date"][:7],
        "age": metadata.get("patient_age"),
        "sex": metadata.get("patient_sex"),
    }
    if result.get("abstained"):
        return [{**base, "finding": ABSTAINED}]
    thresholds = result.get("thresholds") or {}
    flagged = [
        name
        for name, p in result["probabilities"].items()
        if p >= thresholds.get(name, DEFAULT_THRESHOLD)
    ]
    return [{**base, "finding": name} for name in flagged or [NO_FINDING]]


def _aggregate(rows: list[dict], by: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "month", "age", "sex", "finding"])
    frame["age_band"] = age_band(pd.to_numeric(frame["age"], errors="coerce")).astype(object)
    return aggregate_cohort(frame.drop(columns="age"), by)
