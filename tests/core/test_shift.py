"""Tests for core.shift on synthetic samples with and without a shift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import shift
from core.findings import FINDINGS


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_ks_detects_shifted_intensities(rng: np.random.Generator) -> None:
    reference = rng.normal(0.50, 0.05, 500)
    shifted = shift.ks_shift("mean", reference, rng.normal(0.60, 0.05, 200))
    assert shifted.test == shift.KS_TEST
    assert shifted.p_value < 1e-6
    same = shift.ks_shift("mean", reference, rng.normal(0.50, 0.05, 200))
    assert same.p_value > 0.01


def test_ks_needs_enough_values(rng: np.random.Generator) -> None:
    result = shift.ks_shift("mean", rng.normal(size=100), rng.normal(size=5))
    assert result.p_value is None and result.test == ""
    assert "at least" in result.note


def test_ks_ignores_non_finite_values(rng: np.random.Generator) -> None:
    current = np.append(rng.normal(size=30), [np.nan, np.inf])
    result = shift.ks_shift("mean", rng.normal(size=100), current)
    assert "n=30" in result.current


def test_rate_shift_detects_changed_prevalence() -> None:
    shifted = shift.rate_shift("pneumonia", (700, 1000), (40, 200))
    assert shifted.test == shift.CHI2_TEST
    assert shifted.p_value < 1e-6
    same = shift.rate_shift("pneumonia", (700, 1000), (139, 200))
    assert same.p_value > 0.5
    assert same.reference == "70.0% of 1000"


def test_rate_shift_without_enough_scans_or_variation() -> None:
    assert shift.rate_shift("x", (5, 100), (1, 3)).p_value is None
    assert "all-or-nothing" in shift.rate_shift("x", (0, 100), (0, 50)).note


def test_category_shift() -> None:
    shifted = shift.category_shift("sex", {"F": 500, "M": 500}, {"F": 90, "M": 10})
    assert shifted.p_value < 1e-6
    same = shift.category_shift("sex", {"F": 500, "M": 500}, {"F": 51, "M": 49})
    assert same.p_value > 0.5
    single = shift.category_shift("sex", {"F": 100}, {"F": 40})
    assert single.p_value is None and "one category" in single.note


def _sample(rng: np.random.Generator, mean: float, pneumonia: tuple[int, int]) -> shift.ShiftSample:
    positives = dict.fromkeys(FINDINGS, 0) | {"pneumonia": pneumonia[0]}
    return shift.ShiftSample(
        intensity_mean=rng.normal(mean, 0.05, 300),
        intensity_std=rng.normal(0.22, 0.02, 300),
        finding_positive=positives,
        finding_total=dict.fromkeys(FINDINGS, pneumonia[1]),
    )


def test_compare_and_table_flag_only_the_shifted_quantities(rng: np.random.Generator) -> None:
    reference = _sample(rng, 0.50, (700, 1000))
    current = _sample(rng, 0.65, (70, 100))
    table = shift.shift_table(shift.compare(reference, current)).set_index("quantity")
    assert table.loc["Image mean intensity", "verdict"] == "shift"
    assert table.loc["Image intensity spread (std)", "verdict"] == "no shift detected"
    assert table.loc["Pneumonia rate", "verdict"] == "no shift detected"
    assert table.loc["Age", "verdict"] == "Not recorded for the training data."
    assert len(table) == 2 + len(FINDINGS) + 2


def test_no_shift_between_two_draws_of_the_same_population(rng: np.random.Generator) -> None:
    table = shift.shift_table(
        shift.compare(_sample(rng, 0.5, (700, 1000)), _sample(rng, 0.5, (140, 200)))
    )
    assert "shift" not in set(table["verdict"])


def test_bonferroni_correction_raises_the_bar() -> None:
    borderline = shift.ShiftResult("a", shift.KS_TEST, 0.1, 0.004, "", "")
    alone = shift.shift_table([borderline], alpha=0.01)
    assert alone["verdict"].item() == "shift"
    crowded = shift.shift_table([borderline] + [borderline] * 4, alpha=0.01)
    assert set(crowded["verdict"]) == {"no shift detected"}


def test_training_reference_rates() -> None:
    manifest = pd.DataFrame(
        {
            "dataset": ["kermany"] * 4 + ["covid_radiography"] * 3,
            "split": ["train"] * 7,
            "label": ["NORMAL", "PNEUMONIA", "PNEUMONIA", "PNEUMONIA", "COVID", "Normal", "Normal"],
            "subtype": ["none", "bacterial", "bacterial", "viral", "", "", ""],
        }
    )
    per_image = pd.DataFrame({"mean": [0.5, 0.4], "std": [0.2, 0.1]})
    reference = shift.training_reference(manifest, per_image)
    assert reference.finding_positive == {
        "pneumonia": 3,
        "bacterial_pneumonia": 2,
        "viral_pneumonia": 1,
        "covid19": 1,
    }
    # COVID images carry no pneumonia labels: 4 Kermany + 2 adult normals assessed.
    assert reference.finding_total["pneumonia"] == 6
    assert reference.finding_total["covid19"] == 7
    assert reference.intensity_mean.tolist() == [0.5, 0.4]


def test_withheld_quantities_are_named_not_tested(rng: np.random.Generator) -> None:
    reference = _sample(rng, 0.50, (700, 1000))
    current = shift.ShiftSample(
        intensity_mean=rng.normal(0.5, 0.05, 300),
        intensity_std=rng.normal(0.22, 0.02, 300),
        finding_positive={"pneumonia": 70},
        finding_total={"pneumonia": 100},
        withheld=frozenset({"covid19", "sex"}),
    )
    table = shift.shift_table(shift.compare(reference, current)).set_index("quantity")
    for quantity in ("COVID-19-like pattern rate", "Sex"):
        assert table.loc[quantity, "verdict"].startswith("Left out"), quantity
        assert table.loc[quantity, "uploaded"] == ""
    assert table.loc["Pneumonia rate", "verdict"] == "no shift detected"


def test_ages_are_compared_by_band() -> None:
    reference = shift.ShiftSample(age_bands={"18-39": 300, "40-59": 300, "60-79": 300})
    current = shift.ShiftSample(age_bands={"18-39": 10, "40-59": 20, "60-79": 90})
    result = next(r for r in shift.compare(reference, current) if r.quantity == "Age")
    assert result.test == shift.CHI2_TEST and result.p_value < 1e-6
