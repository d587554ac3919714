"""The out-of-distribution Gaussian refuses far-away features and keeps its budget."""

import numpy as np

from models.ood import FALSE_ABSTAIN_BUDGET, INVERSION_BUDGET, FeatureGaussian, fit_feature_gaussian


def test_threshold_keeps_the_false_abstain_budget_and_flags_outliers():
    rng = np.random.default_rng(0)
    train, validation = rng.normal(size=(3000, 16)), rng.normal(size=(2000, 16))
    gaussian = fit_feature_gaussian(train, validation)
    refused = (gaussian.score(validation) > gaussian.threshold).mean()
    assert refused <= FALSE_ABSTAIN_BUDGET + 1e-9
    assert (gaussian.score(rng.normal(loc=3, size=(50, 16))) > gaussian.threshold).all()


def test_state_round_trip():
    rng = np.random.default_rng(1)
    gaussian = fit_feature_gaussian(
        rng.normal(size=(200, 4)), rng.normal(size=(100, 4)), rng.normal(size=(100, 4))
    )
    restored = FeatureGaussian.from_state(gaussian.to_state())
    features = rng.normal(size=(5, 4))
    np.testing.assert_allclose(restored.score(features), gaussian.score(features))
    assert restored.inversion_margin == gaussian.inversion_margin


def test_inversion_margin_keeps_its_budget_and_flags_images_closer_when_inverted():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(3000, 8))
    validation = rng.normal(size=(2000, 8))
    inverted_validation = rng.normal(loc=2, size=(2000, 8))
    gaussian = fit_feature_gaussian(train, validation, inverted_validation)
    assert (
        gaussian.looks_inverted(validation, inverted_validation).mean() <= INVERSION_BUDGET + 1e-9
    )
    # A negative: far from the radiographs itself, typical once inverted back.
    negatives, restored = rng.normal(loc=2, size=(20, 8)), rng.normal(size=(20, 8))
    assert gaussian.looks_inverted(negatives, restored).all()


def test_without_inverted_features_the_negative_check_is_off():
    rng = np.random.default_rng(3)
    gaussian = fit_feature_gaussian(rng.normal(size=(200, 4)), rng.normal(size=(100, 4)))
    assert not gaussian.looks_inverted(
        rng.normal(loc=5, size=(5, 4)), rng.normal(size=(5, 4))
    ).any()
