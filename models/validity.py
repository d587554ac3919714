"""Which findings the model may report for which population, from its measured test numbers.

``models.evaluate`` writes the table into ``models/metrics.json`` together with the SHA-256
of the checkpoint it measured; the classifier serves it (``Classifier.validity``) only for
that exact checkpoint, so a model that has not been evaluated has no valid finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from models.populations import PLURALS, UNKNOWN
from models.reports import report_for_checkpoint

#: A finding is valid for a population when its test AUC reaches this value ...
MIN_AUC = 0.70
#: ... and the lower bound of the AUC's 95% bootstrap interval reaches this one.
MIN_AUC_LOWER = 0.60
VALIDITY_RULE = (
    f"valid for a population when its test AUC is at least {MIN_AUC:.2f} and the lower bound of "
    f"the 95% bootstrap interval at least {MIN_AUC_LOWER:.2f}; for patients of unknown age, only "
    "when valid for both children and adults"
)


@dataclass(frozen=True)
class FindingValidity:
    """Whether one finding may be shown for one population, and the evidence.

    Attributes:
        finding: One of ``core.findings.FINDINGS``.
        population: ``child``, ``adult`` or ``unknown``.
        valid: True when the finding meets :data:`VALIDITY_RULE` for the population.
        reason: One plain sentence saying why (with the measured AUC where there is one).
        auc: Test AUC within the population (None where it could not be measured); for
            unknown age, the AUC over all test films scored without an age.
        auc_ci: Its 95% bootstrap interval.
        test_set: Where it was measured.
        n: Test films measured.
        positives: Of which with the finding.
    """

    finding: str
    population: str
    valid: bool
    reason: str
    auc: float | None = None
    auc_ci: tuple[float, float] | None = None
    test_set: str | None = None
    n: int | None = None
    positives: int | None = None


def judge(finding: str, population: str, report: dict | None, test_set: str) -> FindingValidity:
    """Apply the rule to one finding's test report within one population.

    Args:
        finding: The finding.
        population: ``child`` or ``adult``.
        report: ``models.evaluate.finding_report`` output, or None when the test set holds
            no positive (or no negative) case of the finding for this population.
        test_set: Name of the test films measured, for the reason sentence.

    Returns:
        The verdict with its evidence.
    """
    if report is None or report["auc"] is None or math.isnan(report["auc"]):
        return FindingValidity(
            finding,
            population,
            False,
            f"Not measured: no test films of {PLURALS[population]} with and without this finding.",
        )
    auc, ci = _evidence(report)
    valid = auc >= MIN_AUC and ci[0] >= MIN_AUC_LOWER
    verdict = "meets" if valid else "misses"
    reason = (
        f"Test AUC {auc:.2f} (95% CI {ci[0]:.2f}-{ci[1]:.2f}) on {test_set} {verdict} the rule."
    )
    return FindingValidity(
        finding,
        population,
        valid,
        reason,
        auc,
        ci,
        test_set,
        int(report["n"]),
        int(report["positives"]),
    )


def _evidence(report: dict) -> tuple[float, tuple[float, float]]:
    return float(report["auc"]), (float(report["auc_ci"][0]), float(report["auc_ci"][1]))


def unknown_age(
    child: FindingValidity, adult: FindingValidity, report: dict | None
) -> FindingValidity:
    """Verdict for a patient of unknown age: valid only when valid for children and adults.

    Args:
        child: The finding's verdict for children.
        adult: Its verdict for adults.
        report: Its ``finding_report`` on all test films scored without an age, shown as
            evidence (None where not measured).

    Returns:
        The verdict for population ``unknown``.
    """
    valid = child.valid and adult.valid
    missing = [v.population for v in (child, adult) if not v.valid]
    reason = (
        "Valid for both children and adults."
        if valid
        else "Age unknown and the finding is not valid for "
        + " or ".join(PLURALS[p] for p in missing)
        + "."
    )
    if report is None:
        return FindingValidity(child.finding, UNKNOWN, valid, reason)
    auc, ci = _evidence(report)
    return FindingValidity(
        child.finding,
        UNKNOWN,
        valid,
        reason,
        auc,
        ci,
        "all test films, scored without an age",
        int(report["n"]),
        int(report["positives"]),
    )


def to_table(verdicts: list[FindingValidity]) -> dict[str, dict[str, dict]]:
    """``{finding: {population: verdict fields}}`` for JSON."""
    table: dict[str, dict[str, dict]] = {}
    for verdict in verdicts:
        fields = {k: v for k, v in vars(verdict).items() if k not in ("finding", "population")}
        fields["auc_ci"] = list(verdict.auc_ci) if verdict.auc_ci else None
        table.setdefault(verdict.finding, {})[verdict.population] = fields
    return table


def from_table(table: dict[str, dict[str, dict]]) -> dict[tuple[str, str], FindingValidity]:
    """Inverse of :func:`to_table`, keyed by ``(finding, population)``."""
    verdicts = {}
    for finding, populations in table.items():
        for population, fields in populations.items():
            ci = fields.get("auc_ci")
            verdicts[(finding, population)] = FindingValidity(
                finding=finding,
                population=population,
                valid=bool(fields["valid"]),
                reason=str(fields["reason"]),
                auc=fields.get("auc"),
                auc_ci=(float(ci[0]), float(ci[1])) if ci else None,
                test_set=fields.get("test_set"),
                n=fields.get("n"),
                positives=fields.get("positives"),
            )
    return verdicts


def load_validity(metrics_path: Path, sha256: str) -> dict[tuple[str, str], FindingValidity]:
    """The validity table of the checkpoint with ``sha256``, read from an evaluation report.

    Args:
        metrics_path: ``models/metrics.json`` written by ``models.evaluate``.
        sha256: SHA-256 of the loaded checkpoint.

    Returns:
        Verdicts keyed by ``(finding, population)``; empty when the report is missing, has
        no table, or measured another checkpoint.
    """
    metrics = report_for_checkpoint(metrics_path, sha256)
    if metrics is None or "validity" not in metrics:
        return {}
    return from_table(metrics["validity"]["table"])


def not_evaluated(finding: str, population: str) -> FindingValidity:
    """Verdict for a checkpoint without a matching evaluation report."""
    return FindingValidity(
        finding, population, False, "This model version has not been evaluated on test films."
    )
