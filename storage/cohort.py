"""De-identified aggregates over every stored result, for analysts only.

Results are decrypted here, reduced to ``user_id, month, age_band, sex, finding`` rows and
handed to :func:`core.cohort.aggregate_cohort`, which drops the user ids and suppresses
groups of fewer than ten people. Only the aggregate leaves this module.

:func:`shift_sample` gives the data-shift monitor per-scan observations with no ids, each
quantity shuffled on its own so that values of one scan cannot be linked back together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlmodel import select

from core.cohort import MIN_USERS, aggregate_cohort
from core.eda import age_band
from core.findings import FINDINGS, flagged_findings, is_flagged, threshold_for
from core.shift import ShiftSample
from storage import audit, policy, schema
from storage.actor import Actor
from storage.db import Database
from storage.results import ResultRecord, results_by_scan
from storage.scans import open_scan_payload, scan_payload_with_intensity

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
        crypto.DecryptionError: A stored value fails its integrity check or names an unknown
            key version.
    """
    policy.require_role(actor, schema.Role.ANALYST)
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        rows = []
        owners = session.exec(select(schema.Scan.owner_id).distinct()).all()
        for owner_id in owners:
            sealer = db.keyring.sealer(session, owner_id)
            owned = session.exec(select(schema.Scan).where(schema.Scan.owner_id == owner_id))
            scans = {scan.id: open_scan_payload(sealer, scan) for scan in owned}
            for scan_id, results in results_by_scan(session, sealer, None).items():
                for result in results:
                    rows.extend(_rows(owner_id, scans[scan_id], result))
        table = _aggregate(rows, by)
        audit.append(
            session,
            db,
            "cohort_summary",
            actor=actor,
            details={"by": list(by), "groups": len(table)},
        )
    return table


def shift_sample(db: Database, actor: Actor) -> ShiftSample | None:
    """Observations of every stored scan for the data-shift monitor (:mod:`core.shift`).

    Per scan: intensity mean and spread (sealed in the scan's payload at save time; scans
    stored before that have their image decrypted once, see
    :func:`storage.scans.scan_payload_with_intensity`), age and sex where the metadata records
    them, and whether the scan's latest result flagged each finding (abstained results
    assess nothing). Nothing identifies a user or a
    scan, and each quantity is shuffled independently. The read is audited as one event.

    Args:
        db: Database handle.
        actor: An analyst.

    Returns:
        The sample, or ``None`` when fewer than :data:`core.cohort.MIN_USERS` people have
        stored scans (too few to stay anonymous).

    Raises:
        policy.AccessDenied: The actor is not an active analyst.
        crypto.DecryptionError: A stored value fails its integrity check.
    """
    policy.require_role(actor, schema.Role.ANALYST)
    with db.transaction() as session:
        policy.ensure_active(session, actor)
        owners = session.exec(select(schema.Scan.owner_id).distinct()).all()
        if len(owners) < MIN_USERS:
            audit.append(session, db, "shift_sample", actor=actor, details={"withheld": True})
            return None
        means, stds, ages = [], [], []
        sexes: dict[str, int] = {}
        positive = dict.fromkeys(FINDINGS, 0)
        assessed = dict.fromkeys(FINDINGS, 0)
        for owner_id in owners:
            sealer = db.keyring.sealer(session, owner_id)
            latest = {
                scan_id: results[-1]
                for scan_id, results in results_by_scan(session, sealer, None).items()
            }
            scans = session.exec(select(schema.Scan).where(schema.Scan.owner_id == owner_id)).all()
            for scan in scans:
                payload = scan_payload_with_intensity(session, db, sealer, scan)
                means.append(payload["intensity_mean"])
                stds.append(payload["intensity_std"])
                metadata = payload.get("metadata") or {}
                if isinstance(metadata.get("patient_age"), (int, float)):
                    ages.append(float(metadata["patient_age"]))
                sex = str(metadata.get("patient_sex") or "").strip().upper()
                if sex:
                    sexes[sex] = sexes.get(sex, 0) + 1
                _count_findings(latest.get(schema.stored_id(scan.id)), positive, assessed)
        rng = np.random.default_rng()
        sample = ShiftSample(
            intensity_mean=rng.permutation(np.asarray(means, dtype=np.float64)),
            intensity_std=rng.permutation(np.asarray(stds, dtype=np.float64)),
            finding_positive=positive,
            finding_total=assessed,
            ages=rng.permutation(np.asarray(ages, dtype=np.float64)),
            sexes=dict(sorted(sexes.items())),
        )
        audit.append(
            session,
            db,
            "shift_sample",
            actor=actor,
            details={"scans": len(means), "users": len(owners)},
        )
    return sample


def _count_findings(
    result: ResultRecord | None, positive: dict[str, int], assessed: dict[str, int]
) -> None:
    if result is None or result.abstained:
        return
    for name, p in result.probabilities.items():
        if name not in assessed:
            continue
        assessed[name] += 1
        if is_flagged(p, threshold_for(result.thresholds, name)):
            positive[name] += 1


def _rows(owner_id: int, scan: dict, result: ResultRecord) -> list[dict]:
    metadata = scan.get("metadata") or {}
    base = {
        "user_id": owner_id,
        "month": scan["scan_date"][:7],
        "age": metadata.get("patient_age"),
        "sex": metadata.get("patient_sex"),
    }
    if result.abstained:
        return [{**base, "finding": ABSTAINED}]
    flagged = flagged_findings(result.probabilities, result.thresholds)
    return [{**base, "finding": name} for name in flagged or [NO_FINDING]]


def _aggregate(rows: list[dict], by: Sequence[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "month", "age", "sex", "finding"])
    frame["age_band"] = age_band(pd.to_numeric(frame["age"], errors="coerce")).astype(object)
    return aggregate_cohort(frame.drop(columns="age"), by)
