"""The validity rule per finding and population, and its JSON table."""

import math

import pytest

from models.populations import ADULT, CHILD, UNKNOWN
from models.validity import MIN_AUC, MIN_AUC_LOWER, from_table, judge, to_table, unknown_age


def _report(auc, low, high=0.99, n=100, positives=50):
    return {"auc": auc, "auc_ci": [low, high], "n": n, "positives": positives}


@pytest.mark.parametrize(
    ("auc", "low", "valid"),
    [
        (MIN_AUC, MIN_AUC_LOWER, True),
        (0.95, 0.90, True),
        (MIN_AUC - 0.001, 0.65, False),  # AUC just below the rule
        (0.75, MIN_AUC_LOWER - 0.001, False),  # interval too wide: too few films to trust
    ],
)
def test_rule_needs_auc_and_its_lower_bound(auc, low, valid):
    verdict = judge("pneumonia", ADULT, _report(auc, low), "nih_adult test")
    assert verdict.valid is valid
    assert ("meets" if valid else "misses") in verdict.reason
    assert verdict.n == 100 and verdict.positives == 50


@pytest.mark.parametrize(
    "report", [None, {"auc": math.nan, "auc_ci": [0, 1], "n": 5, "positives": 0}]
)
def test_unmeasured_finding_is_not_valid(report):
    verdict = judge("covid19", CHILD, report, "kermany test")
    assert not verdict.valid
    assert verdict.reason.startswith("Not measured") and "children" in verdict.reason


def test_unknown_age_is_valid_only_when_valid_for_both():
    good_child = judge("pneumonia", CHILD, _report(0.97, 0.95), "kermany")
    bad_adult = judge("pneumonia", ADULT, _report(0.66, 0.55), "nih")
    good_adult = judge("pneumonia", ADULT, _report(0.80, 0.70), "nih")
    mixed = unknown_age(good_child, bad_adult, _report(0.9, 0.88))
    assert mixed.population == UNKNOWN and not mixed.valid
    assert "adults" in mixed.reason and mixed.auc == 0.9
    assert unknown_age(good_child, good_adult, None).valid


def test_table_round_trips():
    verdicts = [
        judge("pneumonia", CHILD, _report(0.97, 0.95), "kermany"),
        judge("covid19", CHILD, None, "kermany"),
    ]
    table = to_table(verdicts)
    assert set(table) == {"pneumonia", "covid19"}
    restored = from_table(table)
    assert restored[("pneumonia", CHILD)] == verdicts[0]
    assert restored[("covid19", CHILD)] == verdicts[1]
