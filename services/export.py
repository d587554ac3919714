"""A user's copy of their records, with what each result is valid for (data portability)."""

from __future__ import annotations

from typing import Any

from core.findings import FINDINGS
from storage.actor import Actor
from storage.db import Database
from storage.export import export_user


def export_records(db: Database, actor: Actor) -> dict[str, Any]:
    """Everything the app holds about the actor, each result with the validity of its findings.

    Each stored result gets ``validity``: per finding, the population its thresholds were
    chosen for and whether that finding was shown to work there, with the reason in one
    sentence. The verdicts come from the evaluation report of the exact checkpoint that
    produced the result (``models/metrics.json``); a result of a checkpoint without one is
    never called valid.

    Args:
        db: Database handle.
        actor: The user whose records are exported.

    Returns:
        ``storage.export.export_user``'s data with ``validity`` added to every result.

    Raises:
        storage.policy.AccessDenied: The account is disabled.
        crypto.DecryptionError: A stored value fails its integrity check.
    """
    # Imported here: the model layer loads torch, which only an export with results needs.
    from models.inference import METRICS_PATH
    from models.populations import UNKNOWN
    from models.validity import load_validity, not_evaluated

    exported = export_user(db, actor)
    tables: dict[str, dict[tuple[str, str], Any]] = {}
    for scan in exported["scans"]:
        for result in scan["results"]:
            sha = result["checkpoint_sha256"]
            if sha not in tables:
                tables[sha] = load_validity(METRICS_PATH, sha)
            population = result.get("population") or UNKNOWN
            result["validity"] = {}
            for finding in FINDINGS:
                if finding not in result["probabilities"]:
                    continue
                verdict = tables[sha].get((finding, population)) or not_evaluated(
                    finding, population
                )
                result["validity"][finding] = {
                    "population": population,
                    "valid": verdict.valid,
                    "reason": verdict.reason,
                }
    return exported
