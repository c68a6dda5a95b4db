"""Bootstrap confidence intervals over eras, and which leaderboard neighbours they cannot separate.

Eras are the unit of resampling: rows within an era share a market regime, so resampling rows would
understate the uncertainty of a mean score. Every model is resampled with the *same* era draws
(paired), and the draws come from a seeded generator, so a re-run gives identical intervals.

Vectorised: a resample is represented by how often it draws each era (a multinomial count vector),
so all resampled means of all models are one matrix product ``scores @ counts.T``. NaN eras (e.g. AUC
of a one-class era) are left out of both the numerator and the era count of each resample.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidScoringInput

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "ConfidenceIntervals",
    "bootstrap_mean_ci",
    "tied_with_next",
]

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 20150216
"""Fixed so that scoring a round twice stores the same intervals."""


@dataclass(frozen=True)
class ConfidenceIntervals:
    """Per model: the mean over eras and the percentile bootstrap interval ``[lower, upper]``."""

    mean: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    confidence: float
    resamples: int


def bootstrap_mean_ci(
    per_era: ArrayLike,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> ConfidenceIntervals:
    """Percentile bootstrap interval of the mean over eras of each row of ``per_era`` (models x eras).

    A 1-D series is treated as a single model.
    """
    scores = np.asarray(per_era, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[np.newaxis, :]
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise InvalidScoringInput(f"per_era must be (n_models, n_eras) with at least one era, got {scores.shape}")
    if resamples < 1:
        raise InvalidScoringInput(f"resamples must be at least 1, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise InvalidScoringInput(f"confidence must be strictly between 0 and 1, got {confidence}")
    n_eras = scores.shape[1]
    counts = np.random.default_rng(seed).multinomial(n_eras, np.full(n_eras, 1.0 / n_eras), size=resamples)
    valid = ~np.isnan(scores)
    filled = np.where(valid, scores, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sums = filled @ counts.T.astype(np.float64)
        used = valid.astype(np.float64) @ counts.T.astype(np.float64)
        means = sums / used
        mean = filled.sum(axis=1) / valid.sum(axis=1)
    tail = (1.0 - confidence) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a model whose every era is NaN -> NaN interval
        lower, upper = np.nanquantile(means, [tail, 1.0 - tail], axis=1)
    return ConfidenceIntervals(mean, lower, upper, confidence=confidence, resamples=resamples)


def tied_with_next(lower: ArrayLike, upper: ArrayLike, ranking: ArrayLike) -> NDArray[np.bool_]:
    """For a ranking (model indices, best first): is each model statistically tied with the next?

    Two neighbours are tied when their intervals overlap. Returns ``len(ranking) - 1`` booleans;
    element i compares ``ranking[i]`` with ``ranking[i + 1]``.
    """
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    order = np.asarray(ranking, dtype=np.intp)
    if lo.shape != hi.shape or lo.ndim != 1:
        raise InvalidScoringInput(f"lower and upper must be vectors of one shape, got {lo.shape} and {hi.shape}")
    if order.size and (order.min() < 0 or order.max() >= lo.size):
        raise InvalidScoringInput(f"ranking holds model indices outside 0..{lo.size - 1}")
    first, second = order[:-1], order[1:]
    return (lo[first] <= hi[second]) & (lo[second] <= hi[first])
