"""Tests of scan-to-scan change detection."""

from __future__ import annotations

from datetime import date

import pytest

from core.compare import (
    HIGHER,
    LOWER,
    NO_CHANGE,
    compare_results,
    compare_scans,
    default_pair,
    verdict,
)
from core.views import View
from storage.scans import ScanSummary
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


# --------------------------------------------------------------------------- like with like


def _film(id: int, day: int, view: View) -> ScanSummary:
    result = make_result(id, probs(0.1 * id))
    return make_scan(id, date(2026, 1, day), results=[result], view=view)


def test_default_pair_is_the_latest_two_films_of_one_projection() -> None:
    scans = [
        _film(1, 1, View.PA),
        _film(2, 1, View.LATERAL),
        _film(3, 2, View.AP),
        _film(4, 3, View.PA),
        _film(5, 3, View.LATERAL),
    ]
    assert default_pair(scans) == (1, 4)
    # An earlier day's film is preferred to a same-day repeat of the projection.
    assert default_pair([*scans, _film(6, 3, View.PA)]) == (1, 6)
    assert default_pair([_film(1, 1, View.PA), _film(2, 1, View.PA)]) == (1, 2)
    assert default_pair([_film(1, 1, View.PA), _film(2, 2, View.AP)]) is None
    assert default_pair([_film(1, 1, View.UNKNOWN), _film(2, 2, View.UNKNOWN)]) is None


def test_comparing_different_projections_warns_in_words() -> None:
    pa, ap, side, unknown = (
        _film(1, 1, View.PA),
        _film(2, 2, View.AP),
        _film(3, 2, View.LATERAL),
        _film(4, 3, View.UNKNOWN),
    )
    assert compare_scans(pa, _film(5, 4, View.PA)).view_warning is None
    mixed = compare_scans(ap, pa)
    assert mixed.comparable
    assert mixed.view_warning == (
        "These films are of different projections (Frontal (PA, standing) and Frontal (AP)): "
        "projections differ systematically (heart size, shoulder blades, lying down), so a "
        "change in the numbers may come from the projection rather than from the lungs."
    )
    assert "not scored" in compare_scans(pa, side).view_warning
    assert "not known" in compare_scans(pa, unknown).view_warning
