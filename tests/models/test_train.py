"""Training helpers: adult oversampling and the model-selection score."""

import math
from collections import Counter

import pytest
import torch

from models.train import ADULT_SOURCE, epoch_order, selection_score


def test_epoch_order_draws_each_adult_film_repeat_times_and_others_once():
    sources = ["kermany"] * 5 + [ADULT_SOURCE] * 2 + ["covid_radiography"] * 3
    order = epoch_order(sources, 4, torch.Generator().manual_seed(0))
    counts = Counter(order.tolist())
    assert len(order) == 10 + 2 * 3
    assert all(counts[i] == (4 if sources[i] == ADULT_SOURCE else 1) for i in range(len(sources)))
    again = epoch_order(sources, 4, torch.Generator().manual_seed(0))
    assert torch.equal(order, again)


def test_epoch_order_without_repeats_is_a_permutation():
    order = epoch_order(["kermany", ADULT_SOURCE, "kermany"], 1, torch.Generator().manual_seed(1))
    assert sorted(order.tolist()) == [0, 1, 2]


def test_selection_score_counts_the_adult_pneumonia_auc_like_one_more_finding():
    pooled = [{"a": 1.0, "b": 0.8, "c": math.nan}] * 2
    adult = [{"pneumonia": 0.5, "covid19": math.nan}] * 2
    assert selection_score(pooled, adult) == pytest.approx((1.0 + 0.8 + 0.5) / 3)
