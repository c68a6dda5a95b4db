"""Logloss and AUC against scikit-learn, per-era statistics by hand, input immutability and errors."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss, roc_auc_score

from services.scoring.domain import (
    InvalidScoringInput,
    consistency,
    corr_mmc,
    era_stats,
    max_drawdown,
    per_row_logloss,
    score_submissions,
    summarize_round,
)

FLOAT_EPS = float(np.finfo(np.float64).eps)  # scikit-learn clips to the dtype's machine epsilon


def _binary_round(seed: int, n_models: int = 5, n_rows: int = 600, n_eras: int = 4):
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n_rows)
    targets = (signal + rng.normal(size=n_rows) > 0).astype(np.float64)
    preds = (1 / (1 + np.exp(-(0.5 * signal[np.newaxis, :] + rng.normal(size=(n_models, n_rows)))))).astype(np.float32)
    preds[1] = np.round(preds[1] * 5) / 5  # heavy ties for AUC
    preds[2, :50] = 0.0  # clipped at eps
    preds[2, 50:100] = 1.0
    eras = np.repeat(np.arange(n_eras), n_rows // n_eras)
    meta = preds.mean(axis=0).astype(np.float64)
    return preds, targets, meta, eras


def test_logloss_and_auc_match_scikit_learn_overall_and_per_era() -> None:
    preds, targets, meta, eras = _binary_round(1)
    scores = score_submissions(preds, targets, meta, eras, eps=FLOAT_EPS)
    for i, row in enumerate(preds.astype(np.float64)):
        assert scores.overall.logloss[i] == pytest.approx(log_loss(targets, y_proba=row), abs=1e-12)
        assert scores.overall.auc[i] == pytest.approx(roc_auc_score(targets, row), abs=1e-12)
        for e in range(4):
            rows = eras == e
            expected_ll = log_loss(targets[rows], y_proba=row[rows])
            assert scores.by_era.logloss[i, e] == pytest.approx(expected_ll, abs=1e-12)
            expected_auc = roc_auc_score(targets[rows], row[rows])
            assert scores.by_era.auc[i, e] == pytest.approx(expected_auc, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=4, max_value=60),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    levels=st.sampled_from([2, 4, 11, 0]),
)
def test_logloss_and_auc_property(n: int, seed: int, levels: int) -> None:
    rng = np.random.default_rng(seed)
    targets = (rng.random(n) < 0.5).astype(np.float64)
    targets[:2] = [0.0, 1.0]  # both classes present
    if levels:
        preds = rng.integers(0, levels + 1, size=(3, n)) / levels
    else:
        preds = rng.random((3, n))
    scores = score_submissions(preds, targets, preds[0], np.zeros(n, dtype=int), eps=FLOAT_EPS)
    for i, row in enumerate(preds):
        assert scores.overall.logloss[i] == pytest.approx(log_loss(targets, y_proba=row), abs=1e-12)
        assert scores.overall.auc[i] == pytest.approx(roc_auc_score(targets, row), abs=1e-12)


def test_graded_targets_give_cross_entropy_and_no_auc() -> None:
    rng = np.random.default_rng(2)
    targets = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=300)
    preds = rng.random((2, 300)).astype(np.float32)
    scores = score_submissions(preds, targets, preds[0].astype(np.float64), np.zeros(300, dtype=int))
    p = preds.astype(np.float64)
    expected = -np.mean(targets * np.log(p) + (1 - targets) * np.log(1 - p), axis=1)
    np.testing.assert_allclose(scores.overall.logloss, expected, rtol=1e-12)
    assert np.all(np.isnan(scores.overall.auc))


def test_constant_half_scores_ln2() -> None:
    preds, targets, meta, eras = _binary_round(3)
    preds[0] = 0.5
    scores = score_submissions(preds, targets, meta, eras)
    assert abs(scores.overall.logloss[0] - math.log(2)) <= 1e-12
    assert np.all(np.abs(scores.by_era.logloss[0] - math.log(2)) <= 1e-12)
    assert scores.overall.auc[0] == 0.5
    assert np.isnan(scores.overall.corr[0])  # a constant has no ranking, as in numerai-tools
    assert abs(scores.overall.mmc[0]) <= 1e-15
    assert abs(float(per_row_logloss(np.full(10, 0.5), targets[:10]).mean()) - math.log(2)) <= 1e-15


def test_logloss_clipping_epsilon_is_configurable() -> None:
    targets = np.array([1.0, 0.0, 1.0, 0.0])
    preds = np.array([[0.0, 0.0, 1.0, 1.0]])
    for eps in (1e-15, 1e-6, 0.01):
        scores = score_submissions(preds, targets, targets, np.zeros(4, dtype=int), eps=eps)
        upper = 1 - eps  # the clipped value; 1 - upper is not exactly eps in floating point
        expected = -(math.log(eps) + 2 * math.log(upper) + math.log(1 - upper)) / 4
        assert scores.overall.logloss[0] == pytest.approx(expected, rel=1e-12)


def test_inputs_are_not_modified(build_round: Callable) -> None:
    data = build_round(21, missing=True, shuffled_eras=True)
    arrays = (data.predictions, data.targets, data.meta, data.eras)
    before = [a.copy() for a in arrays]
    mask = ~np.isnan(data.predictions)
    mask_before = mask.copy()
    for array in (*arrays, mask):
        array.flags.writeable = False  # any in-place write would raise
    score_submissions(*arrays)
    corr_mmc(data.predictions, data.targets, data.meta, mask=mask)
    for original, array in zip(before, arrays, strict=True):
        np.testing.assert_array_equal(original, array)
    np.testing.assert_array_equal(mask_before, mask)


def test_missing_rows_are_scored_on_the_rows_present_for_logloss_and_auc() -> None:
    preds, targets, meta, eras = _binary_round(4)
    holes = preds.copy()
    holes[3, ::7] = np.nan
    scores = score_submissions(holes, targets, meta, eras, eps=FLOAT_EPS)
    keep = ~np.isnan(holes[3])
    row = holes[3, keep].astype(np.float64)
    assert scores.overall.logloss[3] == pytest.approx(log_loss(targets[keep], y_proba=row), abs=1e-12)
    assert scores.overall.auc[3] == pytest.approx(roc_auc_score(targets[keep], row), abs=1e-12)


def test_metrics_subset_leaves_others_nan() -> None:
    preds, targets, meta, eras = _binary_round(5)
    scores = score_submissions(preds, targets, meta, eras, metrics={"logloss"})
    assert np.all(np.isfinite(scores.overall.logloss))
    assert np.all(np.isnan(scores.overall.corr)) and np.all(np.isnan(scores.by_era.auc))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p, t, m, e: (p[:, :-1], t, m, e), "n_rows=600"),
        (lambda p, t, m, e: (p, np.where(np.arange(t.size) == 9, np.nan, t), m, e), "row 9"),
        (lambda p, t, m, e: (p, t, m[:-1], e), "meta_model must have one value per row"),
        (lambda p, t, m, e: (p, t, m, e.astype(float)), "eras must be one integer per row"),
        (lambda p, t, m, e: (p.astype(int), t, m, e), "floating point"),
    ],
)
def test_bad_inputs_are_refused_with_a_message_that_names_the_problem(change, message: str) -> None:
    args = change(*_binary_round(6))
    with pytest.raises(InvalidScoringInput, match=message):
        score_submissions(*args)


def test_a_submission_missing_too_many_ids_is_refused_by_index() -> None:
    preds, targets, meta, eras = _binary_round(7)
    preds[2, :200] = np.nan
    with pytest.raises(InvalidScoringInput, match="submission 2 covers only 400 of 600 rows") as info:
        score_submissions(preds, targets, meta, eras)
    assert info.value.metadata == {"model_index": "2"}


def test_era_stats_on_a_hand_computed_case() -> None:
    series = np.array([[0.1, -0.2, 0.3], [0.02, 0.02, 0.02]])
    stats = era_stats(series)
    mean0 = 0.2 / 3
    std0 = math.sqrt(((0.1 - mean0) ** 2 + (-0.2 - mean0) ** 2 + (0.3 - mean0) ** 2) / 3)
    np.testing.assert_allclose(stats.mean, [mean0, 0.02])
    np.testing.assert_allclose(stats.std, [std0, 0.0], atol=1e-15)
    assert stats.sharpe[0] == pytest.approx(mean0 / std0)
    assert np.isnan(stats.sharpe[1])  # no variation: sharpe undefined
    # cumulative 0.1, -0.1, 0.2: fell 0.2 from its peak of 0.1
    np.testing.assert_allclose(stats.max_drawdown, [0.2, 0.0])


def test_max_drawdown_counts_from_zero_and_skips_nan() -> None:
    np.testing.assert_allclose(max_drawdown([[-0.1, -0.2, 0.5, -0.1]]), [0.3])
    np.testing.assert_allclose(max_drawdown([[0.2, np.nan, -0.5, 0.1]]), [0.5])


def test_logloss_stats_use_the_edge_over_ln2() -> None:
    ln2 = math.log(2)
    stats = era_stats([ln2 - 0.01, ln2 + 0.03, ln2 - 0.01], baseline=ln2, higher_is_better=False)
    assert stats.mean[0] == pytest.approx(ln2 + 0.01 / 3)
    assert stats.max_drawdown[0] == pytest.approx(0.03)


def test_consistency_is_the_share_of_eras_strictly_below_ln2() -> None:
    ln2 = math.log(2)
    per_era = np.array([[0.69, 0.70, 0.68, ln2], [0.7, 0.7, np.nan, 0.6]])
    np.testing.assert_allclose(consistency(per_era), [0.5, 1 / 3])


def test_summarize_round_gives_every_metric() -> None:
    preds, targets, meta, eras = _binary_round(8)
    scores = score_submissions(preds, targets, meta, eras)
    summary = summarize_round(scores)
    np.testing.assert_allclose(summary.corr.mean, np.nanmean(scores.by_era.corr, axis=1))
    np.testing.assert_allclose(summary.consistency, np.mean(scores.by_era.logloss < math.log(2), axis=1))
    assert summary.auc.mean.shape == (5,)
