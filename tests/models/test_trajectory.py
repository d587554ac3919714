"""The timeline's measure (log-odds), the noise band and the noise measurement's perturbations."""

import math

import numpy as np
import pytest

from core.findings import log_odds
from models.noise import PERTURBATIONS, noise_summary
from models.trajectory import change_beyond_noise, saturated_share


def test_log_odds_is_finite_symmetric_and_monotone():
    assert log_odds(0.5) == 0
    assert log_odds(0.9) == pytest.approx(-log_odds(0.1))
    assert log_odds(0.9) == pytest.approx(math.log(9))
    assert math.isfinite(log_odds(1.0)) and math.isfinite(log_odds(0.0))
    # Where the probability barely moves (0.990 -> 0.999), the log-odds still move by 2.3.
    assert log_odds(0.999) - log_odds(0.99) > 2.3
    assert log_odds(1.0) == pytest.approx(-log_odds(0.0))


def test_change_beyond_noise_is_strictly_larger_than_the_band():
    assert change_beyond_noise(0.0, 0.51, 0.5)
    assert change_beyond_noise(1.0, 0.4, 0.5)
    assert not change_beyond_noise(0.0, 0.5, 0.5)


def test_saturated_share_counts_within_0_02_of_either_end():
    assert saturated_share(np.array([0.0, 0.019, 0.5, 0.981, 1.0, 0.97])) == pytest.approx(4 / 6)


def test_noise_summary_reports_absolute_changes():
    summary = noise_summary(np.concatenate([np.full(95, -0.1), np.full(5, 3.0)]))
    assert summary["median"] == pytest.approx(0.1)
    assert summary["max"] == 3.0
    assert 0.1 <= summary["band"] <= 3.0


def test_perturbations_change_the_film_only_slightly():
    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(0.5, 0.15, (200, 200)), 0, 1).astype(np.float32)
    for name, perturb in PERTURBATIONS.items():
        changed = perturb(pixels)
        assert changed.min() >= 0 and changed.max() <= 1, name
        assert 0.9 * 200 <= changed.shape[0] <= 200, name
        assert not np.array_equal(changed, pixels[: changed.shape[0], : changed.shape[1]]), name
    assert PERTURBATIONS["crop_3_percent"](pixels).shape == (188, 188)
