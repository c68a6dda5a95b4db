"""Consistency: share of validation eras beating ln 2."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss

from services.submissions.domain.consistency import BENCHMARK_LOGLOSS, consistency, logloss
from shared.errors import FailedPrecondition, InvalidArgument


def test_per_era_logloss_matches_sklearn_and_counts_eras_below_ln2() -> None:
    rng = np.random.default_rng(0)
    eras = np.repeat([3, 1, 2], 100)
    targets = rng.integers(0, 2, 300).astype(float)
    predictions = np.where(targets == 1, 0.55, 0.45)  # good everywhere...
    predictions[eras == 2] = 1 - predictions[eras == 2]  # ...but wrong in era 2
    result = consistency(predictions, targets, eras)
    assert result.eras.tolist() == [1, 2, 3]
    for era, value in zip(result.eras, result.era_logloss, strict=True):
        assert value == pytest.approx(log_loss(targets[eras == era], predictions[eras == era], labels=[0, 1]))
    assert result.eras_beating_benchmark == 2 and result.share == pytest.approx(2 / 3)
    assert result.is_consistent(0.58) and not result.is_consistent(0.75)
    assert BENCHMARK_LOGLOSS == math.log(2)


def test_constant_half_never_beats_the_benchmark_and_extremes_are_clipped() -> None:
    targets = np.array([0.0, 1.0, 0.25, 0.75])
    assert consistency(np.full(4, 0.5), targets, np.zeros(4)).share == 0.0  # equal is not better
    assert math.isfinite(logloss(np.array([0.0, 1.0]), np.array([1.0, 0.0])))


def test_unknown_targets_are_a_precondition_failure() -> None:
    with pytest.raises(FailedPrecondition, match="only the platform holds"):
        consistency(np.full(3, 0.5), None, np.zeros(3))
    with pytest.raises(FailedPrecondition, match="1 validation targets are unknown"):
        consistency(np.full(3, 0.5), np.array([0.0, np.nan, 1.0]), np.zeros(3))
    with pytest.raises(InvalidArgument, match="aligned"):
        consistency(np.full(3, 0.5), np.zeros(2), np.zeros(3))
