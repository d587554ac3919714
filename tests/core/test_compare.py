"""Tests of scan-to-scan change detection."""

from __future__ import annotations

from datetime import date

import pytest

from core.compare import HIGHER, LOWER, NO_CHANGE, compare_results, compare_scans, verdict
from tests.core._records import make_result, make_scan, probs


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (0.29, HIGHER),
        (0.1, NO_CHANGE),
        (0.0, NO_CHANGE),
        (-0.1, NO_CHANGE),
        (-0.11, LOWER),
        (0.35 - 0.25, NO_CHANGE),
    ],
)
def test_verdict_uses_the_margin_strictly(delta: float, expected: str) -> None:
    assert verdict(delta, 0.10) == expected


def test_compare_scans_orders_by_date_and_gives_plain_verdicts() -> None:
    later = make_scan(
        2, date(2026, 3, 1), results=[make_result(2, probs(0.41, bacterial=0.30, viral=0.12))]
    )
    earlier = make_scan(
        1, date(2026, 1, 1), results=[make_result(1, probs(0.12, bacterial=0.50, viral=0.10))]
    )
    comparison = compare_scans(later, earlier)
    assert (comparison.before_scan_id, comparison.after_scan_id) == (1, 2)
    assert comparison.comparable
    assert comparison.model_version == "1"
    assert [c.verdict for c in comparison.changes] == [HIGHER, LOWER, NO_CHANGE, NO_CHANGE]
    pneumonia = comparison.change_for("pneumonia")
    assert pneumonia is not None
    assert pneumonia.delta == pytest.approx(0.29)
    assert pneumonia.sentence == "Pneumonia: higher (12% to 41%)."
    assert "10% or less count as no meaningful change" in comparison.message
    assert "model v1" in comparison.message


def test_margin_is_configurable() -> None:
    a = make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.20))])
    b = make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.35))])
    assert compare_scans(a, b).change_for("pneumonia").verdict == HIGHER
    assert compare_scans(a, b, margin=0.2).change_for("pneumonia").verdict == NO_CHANGE


def test_different_versions_are_not_compared_and_the_message_says_so() -> None:
    a = make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.1), model_version="1")])
    b = make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.6), model_version="2")])
    comparison = compare_scans(a, b, current_version="2")
    assert not comparison.comparable
    assert comparison.changes == ()
    assert "v1, v2" in comparison.message
    assert "re-score the older scan" in comparison.message
    with pytest.raises(ValueError):
        compare_results(a.results[0], b.results[0])


def test_prefers_the_current_version_when_both_scans_have_it() -> None:
    a = make_scan(
        1,
        date(2026, 1, 1),
        results=[
            make_result(1, probs(0.1), model_version="1"),
            make_result(3, probs(0.3), model_version="2"),
        ],
    )
    b = make_scan(
        2,
        date(2026, 2, 1),
        results=[
            make_result(2, probs(0.6), model_version="1"),
            make_result(4, probs(0.35), model_version="2"),
        ],
    )
    comparison = compare_scans(a, b, current_version="2")
    assert comparison.model_version == "2"
    assert comparison.change_for("pneumonia").verdict == NO_CHANGE
    fallback = compare_scans(a, b, current_version="9")
    assert fallback.model_version == "2"


def test_abstained_results_and_unscored_scans_are_not_compared() -> None:
    a = make_scan(
        1,
        date(2026, 1, 1),
        results=[make_result(1, probs(0.1), abstained=True, abstain_reason="blurred")],
    )
    b = make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.6))])
    assert not compare_scans(a, b).comparable
    unscored = compare_scans(make_scan(3, date(2026, 1, 5)), b)
    assert not unscored.comparable
    assert "need a model result" in unscored.message


def test_rejects_a_margin_out_of_range() -> None:
    a = make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.1))])
    with pytest.raises(ValueError):
        compare_scans(a, a, margin=1.5)
