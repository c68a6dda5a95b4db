"""Stake-weighted meta model against numerai-tools, and the cross-fitted learned stacker."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numerai_tools.scoring import gaussian, stake_weight, tie_kept_rank

from services.scoring.domain import (
    InvalidScoringInput,
    corr_mmc,
    fit_stacker,
    gaussianised_submissions,
    stake_weighted_meta_model,
)


def _submissions(seed: int, n_models: int = 6, n_rows: int = 800) -> np.ndarray:
    rng = np.random.default_rng(seed)
    preds = rng.random((n_models, n_rows)).astype(np.float32)
    preds[1] = np.round(preds[1] * 3) / 3
    return preds


def test_stake_weighted_meta_model_matches_numerai_tools_stake_weight() -> None:
    preds = _submissions(1)
    stakes = np.array([5_000, 0, 120_000, 1, 7_000_000_000, 33], dtype=np.int64)
    index = pd.Index([f"id{k:05d}" for k in range(preds.shape[1])])
    frame = pd.DataFrame(preds.T.astype(np.float64), index=index, columns=[f"m{i}" for i in range(6)])
    stake_series = pd.Series(stakes, index=frame.columns, name="stake")
    expected = stake_weight(gaussian(tie_kept_rank(frame)), stake_series).to_numpy()
    np.testing.assert_allclose(stake_weighted_meta_model(preds, stakes), expected, rtol=0, atol=1e-12)


def test_no_stakes_or_all_zero_stakes_mean_equal_weights() -> None:
    preds = _submissions(2)
    equal = gaussianised_submissions(preds, dtype=np.float64).mean(axis=0)
    np.testing.assert_allclose(stake_weighted_meta_model(preds), equal, atol=1e-12)
    zero = np.zeros(6, dtype=np.int64)
    np.testing.assert_allclose(stake_weighted_meta_model(preds, zero), equal, atol=1e-12)


def test_unstaked_models_do_not_move_the_meta_model() -> None:
    preds = _submissions(3)
    stakes = np.array([1, 0, 2, 0, 3, 4], dtype=np.int64)
    other = preds.copy()
    other[1] = np.random.default_rng(9).random(preds.shape[1])
    np.testing.assert_array_equal(stake_weighted_meta_model(preds, stakes), stake_weighted_meta_model(other, stakes))


def test_negative_or_non_integer_stakes_are_refused() -> None:
    preds = _submissions(4)
    with pytest.raises(InvalidScoringInput, match="model 2 has -5"):
        stake_weighted_meta_model(preds, np.array([1, 1, -5, 1, 1, 1]))
    with pytest.raises(InvalidScoringInput, match="integer satoshi"):
        stake_weighted_meta_model(preds, np.ones(6))


def test_missing_rows_count_as_the_median_rank() -> None:
    preds = _submissions(5)
    preds[2, :40] = np.nan
    ranks = gaussianised_submissions(preds)
    assert np.all(ranks[2, :40] == 0.0)
    assert np.isfinite(stake_weighted_meta_model(preds)).all()


def test_a_copy_of_the_meta_model_has_no_contribution() -> None:
    rng = np.random.default_rng(6)
    preds = _submissions(6)
    targets = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=preds.shape[1])
    meta = stake_weighted_meta_model(preds, np.arange(1, 7, dtype=np.int64))
    with_copies = np.vstack([preds, meta.astype(np.float32)[np.newaxis, :]]).astype(np.float64)
    with_copies = np.vstack([with_copies, meta[np.newaxis, :]])
    _, mmc = corr_mmc(with_copies, targets, meta)
    assert abs(mmc[-1]) < 1e-15  # the exact meta model
    assert abs(mmc[-2]) < 1e-6  # its float32 storage: only rounding-level ties
    assert np.max(np.abs(mmc[:-2])) > 1e-3  # while real submissions do contribute


def _stacking_round(seed: int, n_rows: int = 2400, n_eras: int = 12):
    """Two informative models (one duplicated), two noise models; binary targets."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, n_rows))
    targets = (rng.random(n_rows) < 1 / (1 + np.exp(-(0.8 * a + 0.6 * b)))).astype(np.float64)
    preds = np.vstack(
        [
            1 / (1 + np.exp(-(a + 0.5 * rng.normal(size=n_rows)))),
            1 / (1 + np.exp(-(b + 0.5 * rng.normal(size=n_rows)))),
            rng.random(n_rows),
            rng.random(n_rows),
        ]
    ).astype(np.float32)
    preds = np.vstack([preds, preds[1]])  # model 4 duplicates model 1
    eras = np.repeat(np.arange(n_eras), n_rows // n_eras)
    return preds, targets, eras


def test_stacker_weights_are_non_negative_shares_on_the_informative_models() -> None:
    preds, targets, eras = _stacking_round(1)
    fit = fit_stacker(preds, targets, eras, folds=4)
    assert np.all(fit.weights >= 0) and fit.weights.sum() == pytest.approx(1.0)
    assert fit.weights[0] > 0.2
    assert fit.weights[1] + fit.weights[4] > 0.2
    assert fit.weights[1] == pytest.approx(fit.weights[4], rel=1e-6)  # identical models split the weight
    assert fit.weights[2] + fit.weights[3] < 0.05
    assert np.all(fit.fold_weights >= 0) and fit.fold_weights.shape == (4, 5)
    assert fit.meta_logloss < math.log(2) - 0.02
    assert np.all((fit.meta_model > 0) & (fit.meta_model < 1))
    np.testing.assert_array_equal(fit.fold_of_era, np.repeat(np.arange(4), 3))


def test_an_eras_meta_prediction_never_sees_its_own_targets() -> None:
    preds, targets, eras = _stacking_round(2)
    fit = fit_stacker(preds, targets, eras, folds=4)
    changed = targets.copy()
    era = 5
    rows = eras == era
    changed[rows] = 1.0 - changed[rows]
    refit = fit_stacker(preds, changed, eras, folds=4)
    np.testing.assert_array_equal(refit.meta_model[rows], fit.meta_model[rows])
    same_fold = np.isin(eras, np.flatnonzero(fit.fold_of_era == fit.fold_of_era[era]))
    np.testing.assert_array_equal(refit.meta_model[same_fold], fit.meta_model[same_fold])
    assert not np.allclose(refit.meta_model[~same_fold], fit.meta_model[~same_fold])


def test_leave_one_out_gain_equals_refitting_without_the_model() -> None:
    preds, targets, eras = _stacking_round(3)
    fit = fit_stacker(preds, targets, eras, folds=3)
    for j in range(preds.shape[0]):
        others = np.delete(preds, j, axis=0)
        without = fit_stacker(others, targets, eras, folds=3)
        assert fit.loo_gain[j] == pytest.approx(without.meta_logloss - fit.meta_logloss, abs=1e-9)
    assert fit.loo_gain[0] > 0.01  # the only carrier of signal a
    # each copy of model 1 has a stand-in; only the ridge's spreading makes a small difference
    assert abs(fit.loo_gain[1]) < 5e-4 and abs(fit.loo_gain[4]) < 5e-4


def test_stacker_needs_two_eras_and_probability_targets() -> None:
    preds, targets, eras = _stacking_round(4)
    with pytest.raises(InvalidScoringInput, match="at least 2 eras"):
        fit_stacker(preds, targets, np.zeros_like(eras))
    with pytest.raises(InvalidScoringInput, match=r"targets in \[0, 1\]"):
        fit_stacker(preds, targets * 2, eras)


def test_meta_model_functions_do_not_modify_inputs() -> None:
    preds, targets, eras = _stacking_round(5)
    stakes = np.arange(5, dtype=np.int64)
    copies = [a.copy() for a in (preds, targets, eras, stakes)]
    for array in (preds, targets, eras, stakes):
        array.flags.writeable = False
    stake_weighted_meta_model(preds, stakes)
    fit_stacker(preds, targets, eras, folds=3)
    for original, array in zip(copies, (preds, targets, eras, stakes), strict=True):
        np.testing.assert_array_equal(original, array)
