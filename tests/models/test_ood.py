"""The out-of-distribution Gaussian refuses far-away features and keeps its budget."""

import numpy as np

from models.ood import FALSE_ABSTAIN_BUDGET, FeatureGaussian, fit_feature_gaussian


def test_threshold_keeps_the_false_abstain_budget_and_flags_outliers():
    rng = np.random.default_rng(0)
    train, validation = rng.normal(size=(3000, 16)), rng.normal(size=(2000, 16))
    gaussian = fit_feature_gaussian(train, validation)
    refused = (gaussian.score(validation) > gaussian.threshold).mean()
    assert refused <= FALSE_ABSTAIN_BUDGET + 1e-9
    assert (gaussian.score(rng.normal(loc=3, size=(50, 16))) > gaussian.threshold).all()


def test_state_round_trip():
    rng = np.random.default_rng(1)
    gaussian = fit_feature_gaussian(rng.normal(size=(200, 4)), rng.normal(size=(100, 4)))
    restored = FeatureGaussian.from_state(gaussian.to_state())
    features = rng.normal(size=(5, 4))
    np.testing.assert_allclose(restored.score(features), gaussian.score(features))
