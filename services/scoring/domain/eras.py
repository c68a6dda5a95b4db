"""Statistics of per-era score series: mean, std, sharpe, max drawdown, and the 2017 consistency rule.

A round's eras are its independent-ish cross-sections, so a model's quality and its risk are read from
the series of its per-era scores rather than from one pooled number.

Conventions (chosen to match numerai-tools where it has an opinion):

* ``std`` is the population standard deviation (ddof=0), as ``numerai_tools.scoring.sharpe_ratio``
  uses ``np.std``; ``sharpe = mean / std`` (NaN when std is 0, e.g. a single era).
* ``max_drawdown`` is the largest fall of the cumulative sum of per-era *edges* from its running peak,
  the peak starting at 0 before the first era; it is reported as a non-negative number. The edge is
  ``score - baseline`` for higher-is-better metrics and ``baseline - score`` for losses, so that
  drawdowns mean the same thing for CORR (baseline 0), AUC (0.5) and logloss (ln 2).
* NaN eras (e.g. AUC of an era with one class) are skipped by every statistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .metrics import MetricValues, RoundScores

__all__ = [
    "BENCHMARK_LOGLOSS",
    "EraStats",
    "RoundSummary",
    "consistency",
    "era_stats",
    "max_drawdown",
    "summarize_round",
]

BENCHMARK_LOGLOSS = math.log(2.0)
"""Logloss of predicting 0.5 everywhere: the 2017 consistency benchmark (-ln 0.5)."""

_F64 = NDArray[np.float64]


@dataclass(frozen=True)
class EraStats:
    """Per-model statistics of a per-era series; each field has shape (n_models,)."""

    mean: _F64
    std: _F64
    sharpe: _F64
    max_drawdown: _F64


@dataclass(frozen=True)
class RoundSummary:
    """Era statistics of every metric of a round, plus consistency (share of eras beating ln 2)."""

    corr: EraStats
    mmc: EraStats
    logloss: EraStats
    auc: EraStats
    consistency: _F64


def _as_matrix(series: ArrayLike) -> _F64:
    array = np.asarray(series, dtype=np.float64)
    return array[np.newaxis, :] if array.ndim == 1 else array


def max_drawdown(edges: ArrayLike) -> _F64:
    """Largest drop of the cumulative sum of each row of ``edges`` from its running peak (>= 0).

    The running peak starts at 0, so a model that loses from the first era has a drawdown too.
    """
    matrix = np.nan_to_num(_as_matrix(edges), nan=0.0)
    cumulative = np.cumsum(matrix, axis=1)
    peak = np.maximum.accumulate(np.maximum(cumulative, 0.0), axis=1)
    if cumulative.shape[1] == 0:
        return np.zeros(cumulative.shape[0])
    return np.max(peak - cumulative, axis=1)


def era_stats(series: ArrayLike, *, baseline: float = 0.0, higher_is_better: bool = True) -> EraStats:
    """Mean, std, sharpe and max drawdown of each row of ``series`` (n_models, n_eras) or one series."""
    matrix = _as_matrix(series)
    with np.errstate(invalid="ignore", divide="ignore"):
        counts = np.sum(~np.isnan(matrix), axis=1)
        mean = np.where(counts > 0, np.nansum(matrix, axis=1) / np.maximum(counts, 1), np.nan)
        deviations = np.where(np.isnan(matrix), 0.0, matrix - mean[:, np.newaxis])
        std = np.where(counts > 0, np.sqrt(np.sum(deviations**2, axis=1) / np.maximum(counts, 1)), np.nan)
        sharpe = np.where(std > 0, mean / std, np.nan)
    edges = matrix - baseline if higher_is_better else baseline - matrix
    return EraStats(mean=mean, std=std, sharpe=sharpe, max_drawdown=max_drawdown(edges))


def consistency(logloss_by_era: ArrayLike, *, benchmark: float = BENCHMARK_LOGLOSS) -> _F64:
    """Share (0..1) of each model's eras whose logloss is below ``benchmark`` (ln 2), NaN eras skipped."""
    matrix = _as_matrix(logloss_by_era)
    valid = ~np.isnan(matrix)
    with np.errstate(invalid="ignore", divide="ignore"):
        beaten = np.sum(valid & (matrix < benchmark), axis=1)
        return np.where(valid.any(axis=1), beaten / np.sum(valid, axis=1), np.nan)


def summarize_round(scores: RoundScores) -> RoundSummary:
    """Era statistics of every metric in ``scores.by_era``, with each metric's natural baseline."""
    by_era: MetricValues = scores.by_era
    return RoundSummary(
        corr=era_stats(by_era.corr),
        mmc=era_stats(by_era.mmc),
        logloss=era_stats(by_era.logloss, baseline=BENCHMARK_LOGLOSS, higher_is_better=False),
        auc=era_stats(by_era.auc, baseline=0.5),
        consistency=consistency(by_era.logloss),
    )
