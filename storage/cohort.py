"""De-identified aggregates over every stored result, for analysts only.

Results are decrypted here, reduced to ``user_id, month, age_band, sex, finding`` rows and
handed to :func:`core.cohort.aggregate_cohort`, which drops the user ids and leaves out every
group of fewer than ten people, plus the groups that would let a left-out count be worked out
from the others (the rule is in :mod:`core.cohort`). Only the aggregate leaves this module.

:func:`shift_sample` gives the data-shift monitor per-scan observations with no ids, each
quantity shuffled on its own so that values of one scan cannot be linked back together. Its
category counts (sex, age band, each finding's flagged / not flagged / not assessed) follow the
same rule through :func:`core.cohort.suppress_categories`, and ages are given in bands only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sqlmodel import select

from core.cohort import MIN_USERS, UNKNOWN, aggregate_cohort, suppress_categories
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

# A scan's state for one finding in the shift sample; together they partition all scans, whose
# number the sample reveals, so the not-assessed state is protected like the other two.
POSITIVE, NEGATIVE, NOT_ASSESSED = "positive", "negative", "not assessed"


def cohort_summary(db: Database, actor: Actor, by: Sequence[str]) -> pd.DataFrame:
    """Counts of results per group (see :func:`core.cohort.aggregate_cohort`).

    Args:
        db: Database handle.
        actor: An analyst.
        by: Grouping columns among ``finding``, ``month``, ``age_band``, ``sex``.

    Returns:
        One row per published group with ``count`` (results) and ``users`` (distinct people)
        as integers; groups that could single someone out are absent, and no total row is
        added.

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
    :func:`storage.scans.scan_payload_with_intensity`), age band and sex where the metadata
    records them, and whether the scan's latest result flagged each finding (abstained results
    assess nothing). Nothing identifies a user or a scan, and each quantity is shuffled
    independently. Category counts follow :func:`core.cohort.suppress_categories`: a quantity
    with a left-out category is withheld whole (named in ``withheld``), because a partial mix
    would be compared as if the missing categories were empty. The read is audited as one
    event.

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
        means, stds = [], []
        # Per quantity ("sex", "age", each finding): distinct people and scans per category.
        people: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
        scans: dict[str, Counter[str]] = defaultdict(Counter)
        for owner_id in owners:
            sealer = db.keyring.sealer(session, owner_id)
            latest = {
                scan_id: results[-1]
                for scan_id, results in results_by_scan(session, sealer, None).items()
            }
            owned = session.exec(select(schema.Scan).where(schema.Scan.owner_id == owner_id))
            for scan in owned:
                payload = scan_payload_with_intensity(session, db, sealer, scan)
                means.append(payload["intensity_mean"])
                stds.append(payload["intensity_std"])
                categories = _categories(
                    payload.get("metadata") or {}, latest.get(schema.stored_id(scan.id))
                )
                for quantity, category in categories.items():
                    people[quantity][category].add(owner_id)
                    scans[quantity][category] += 1
        shown = {quantity: suppress_categories(groups) for quantity, groups in people.items()}
        withheld = {
            quantity
            for quantity, groups in people.items()
            if set(groups) - {UNKNOWN, NOT_ASSESSED} - shown[quantity]
        }
        rng = np.random.default_rng()
        sample = ShiftSample(
            intensity_mean=rng.permutation(np.asarray(means, dtype=np.float64)),
            intensity_std=rng.permutation(np.asarray(stds, dtype=np.float64)),
            finding_positive={
                name: scans[name][POSITIVE] for name in FINDINGS if name not in withheld
            },
            finding_total={
                name: scans[name][POSITIVE] + scans[name][NEGATIVE]
                for name in FINDINGS
                if name not in withheld
            },
            age_bands=_mix(scans["age"], withheld="age" in withheld),
            sexes=_mix(scans["sex"], withheld="sex" in withheld),
            withheld=frozenset(withheld),
        )
        audit.append(
            session,
            db,
            "shift_sample",
            actor=actor,
            details={"scans": len(means), "users": len(owners), "left_out": sorted(withheld)},
        )
    return sample


def _categories(metadata: Mapping, result: ResultRecord | None) -> dict[str, str]:
    """The scan's category for each quantity of the shift sample."""
    age = metadata.get("patient_age")
    band = (
        age_band(pd.Series([float(age)])).iloc[0]
        if isinstance(age, (int, float)) and not isinstance(age, bool)
        else None
    )
    sex = str(metadata.get("patient_sex") or "").strip().upper()
    categories = {"age": UNKNOWN if pd.isna(band) else str(band), "sex": sex or UNKNOWN}
    for name in FINDINGS:
        if result is None or result.abstained or name not in result.probabilities:
            categories[name] = NOT_ASSESSED
        elif is_flagged(result.probabilities[name], threshold_for(result.thresholds, name)):
            categories[name] = POSITIVE
        else:
            categories[name] = NEGATIVE
    return categories


def _mix(scans: Counter[str], withheld: bool) -> dict[str, int]:
    """Scans per recorded category, or nothing when the quantity is withheld."""
    if withheld:
        return {}
    return {category: scans[category] for category in sorted(scans) if category != UNKNOWN}


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
