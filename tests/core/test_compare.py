"""Tests of scan-to-scan change detection."""

from __future__ import annotations

from datetime import date

import pytest

from core.compare import (
    HIGHER,
    LOWER,
    NO_CHANGE,
    compare_readings,
    verdict,
)
from core.reading import ADULT
from core.scan_reading import ScanReading
from core.views import View
from storage.scans import ScanSummary
from tests.core._records import VALIDITY, make_result, make_scan, probs, read


def _pair(*scans: ScanSummary, **kwargs) -> list[ScanReading]:
    return read(scans, **kwargs)


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


def test_compare_orders_by_date_and_gives_plain_verdicts() -> None:
    later = make_scan(
        2, date(2026, 3, 1), results=[make_result(2, probs(0.41, bacterial=0.30, viral=0.12))]
    )
    earlier = make_scan(
        1, date(2026, 1, 1), results=[make_result(1, probs(0.12, bacterial=0.50, viral=0.10))]
    )
    first, second = _pair(later, earlier)
    comparison = compare_readings(second, first)
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
    assert comparison.view_warning is None


def test_margin_is_configurable() -> None:
    a, b = _pair(
        make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.20))]),
        make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.35))]),
    )
    assert compare_readings(a, b).change_for("pneumonia").verdict == HIGHER
    assert compare_readings(a, b, margin=0.2).change_for("pneumonia").verdict == NO_CHANGE


def test_different_versions_are_not_compared_and_the_message_says_so() -> None:
    # Without a loaded model each scan's latest result is read, whatever its version.
    a, b = _pair(
        make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.1), model_version="1")]),
        make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.6), model_version="2")]),
        current_version=None,
    )
    comparison = compare_readings(a, b)
    assert not comparison.comparable
    assert comparison.changes == ()
    assert "(v1 and v2)" in comparison.message
    assert "re-score the older scan" in comparison.message


def test_the_current_versions_numbers_are_compared_when_both_scans_have_them() -> None:
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
    comparison = compare_readings(*_pair(a, b, current_version="2"))
    assert comparison.model_version == "2"
    assert comparison.change_for("pneumonia").verdict == NO_CHANGE
    # A scan without the current model's result awaits re-scoring: nothing to compare.
    waiting = compare_readings(*_pair(a, b, current_version="9"))
    assert not waiting.comparable
    assert "older model version" in waiting.message


def test_films_without_numbers_are_not_compared_and_their_reason_is_said() -> None:
    a = make_scan(
        1,
        date(2026, 1, 1),
        results=[make_result(1, probs(0.1), abstained=True, abstain_reason="It is blurred.")],
    )
    b = make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.6))])
    unsure = compare_readings(*_pair(a, b))
    assert not unsure.comparable and unsure.changes == ()
    assert "cannot be compared" in unsure.message and "It is blurred." in unsure.message
    unscored = compare_readings(*_pair(make_scan(3, date(2026, 1, 5)), b))
    assert not unscored.comparable
    assert "has not been scored" in unscored.message


def test_a_greyed_finding_is_compared_but_marked() -> None:
    a, b = _pair(
        make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.1, bacterial=0.1))]),
        make_scan(2, date(2026, 2, 1), results=[make_result(2, probs(0.1, bacterial=0.8))]),
        population=ADULT,
        validity=VALIDITY,
    )
    change = compare_readings(a, b).change_for("bacterial_pneumonia")
    assert change is not None and change.greyed and change.verdict == HIGHER
    assert not compare_readings(a, b).change_for("pneumonia").greyed


def test_rejects_a_margin_out_of_range() -> None:
    (a,) = _pair(make_scan(1, date(2026, 1, 1), results=[make_result(1, probs(0.1))]))
    with pytest.raises(ValueError):
        compare_readings(a, a, margin=1.5)


# --------------------------------------------------------------------------- like with like


def _film(id: int, day: int, view: View, doubt: str | None = None) -> ScanSummary:
    result = make_result(id, probs(0.1 * id))
    return make_scan(id, date(2026, 1, day), results=[result], view=view, view_doubt=doubt)


def test_comparing_different_projections_warns_in_words() -> None:
    pa, ap, later_pa = _pair(_film(1, 1, View.PA), _film(2, 2, View.AP), _film(5, 4, View.PA))
    assert compare_readings(pa, later_pa).view_warning is None
    mixed = compare_readings(ap, pa)
    assert mixed.comparable
    assert mixed.view_warning == (
        "These films are of different projections (Frontal (PA, standing) and Frontal (AP)): "
        "projections differ systematically (heart size, shoulder blades, lying down), so a "
        "change in the numbers may come from the projection rather than from the lungs."
    )


def test_a_side_or_unknown_film_is_not_compared_and_warned_about() -> None:
    pa, side, unknown = _pair(
        _film(1, 1, View.PA), _film(3, 2, View.LATERAL), _film(4, 3, View.UNKNOWN)
    )
    with_side = compare_readings(pa, side)
    assert not with_side.comparable
    assert "not scored" in with_side.view_warning
    with_unknown = compare_readings(pa, unknown)
    assert not with_unknown.comparable
    assert "not known" in with_unknown.view_warning


def test_a_film_of_uncertain_view_is_compared_with_a_warning() -> None:
    pa, doubtful = _pair(
        _film(1, 1, View.PA), _film(2, 2, View.PA, "This does not look like a frontal film.")
    )
    comparison = compare_readings(pa, doubtful)
    assert comparison.comparable
    assert comparison.view_warning is not None
    assert "2 Jan 2026, frontal (PA, standing) is uncertain" in comparison.view_warning
