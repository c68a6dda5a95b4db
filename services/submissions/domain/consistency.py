"""Consistency, the 2017 rule: the share of validation eras whose logloss beats ln 2.

Why per era: with a signal this weak, one good overall logloss can come from a few lucky eras; a
model that beats the "predict 0.5" benchmark (logloss ln 2 ~ 0.6931) era after era is more likely
to hold up live. Numerai's submission-criteria code (2017-09) counted eras with
``log_loss(target, probability) < -ln(0.5)``; "consistent" meant >= 75 % (Jan 2018), later 58 %.

Only the platform can compute it while a round is open, because the validation targets are
hidden (committed to, revealed at resolve); a caller without targets gets FAILED_PRECONDITION.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.errors import FailedPrecondition, InvalidArgument

BENCHMARK_LOGLOSS = math.log(2.0)  # -ln(0.5): the logloss of predicting 0.5 everywhere
#: Clipping of probabilities before the log, as sklearn's log_loss did in 2017 (eps=1e-15).
LOGLOSS_EPS = 1e-15


def logloss_terms(predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-row cross-entropy (targets may be graded in [0, 1]); probabilities clipped to avoid inf."""
    p = np.clip(np.asarray(predictions, dtype=np.float64), LOGLOSS_EPS, 1.0 - LOGLOSS_EPS)
    y = np.asarray(targets, dtype=np.float64)
    return -(y * np.log(p) + (1.0 - y) * np.log1p(-p))


def logloss(predictions: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy over rows."""
    return float(np.mean(logloss_terms(predictions, targets)))


@dataclass(frozen=True)
class ConsistencyResult:
    """Per-era loglosses of the validation eras and the share beating the benchmark."""

    eras: np.ndarray  # era numbers, ascending
    era_logloss: np.ndarray  # float64, same order
    benchmark: float

    @property
    def eras_beating_benchmark(self) -> int:
        return int(np.count_nonzero(self.era_logloss < self.benchmark))

    @property
    def share(self) -> float:
        """Fraction in [0, 1] (the 2017 code reported it as a percentage)."""
        return self.eras_beating_benchmark / len(self.eras)

    def is_consistent(self, threshold: float = 0.58) -> bool:
        """2018 rule: share >= threshold (0.75 from Jan 2018, 0.58 from Apr 2018, our default)."""
        return self.share >= threshold


def consistency(
    predictions: np.ndarray,
    targets: np.ndarray | None,
    eras: np.ndarray,
    *,
    benchmark: float = BENCHMARK_LOGLOSS,
) -> ConsistencyResult:
    """Per-era logloss of ``predictions`` on validation rows and how many eras beat ``benchmark``.

    All three arrays are aligned to the same validation rows. ``targets`` None or containing NaN
    means the caller doesn't know them (a participant's copy), which is a precondition failure,
    not bad input.
    """
    if targets is None:
        raise FailedPrecondition("consistency needs the validation targets, which only the platform holds")
    predictions = np.asarray(predictions)
    targets = np.asarray(targets)
    eras = np.asarray(eras)
    if not (len(predictions) == len(targets) == len(eras)):
        raise InvalidArgument(
            f"consistency: predictions ({len(predictions)}), targets ({len(targets)}) and eras ({len(eras)}) "
            "must be aligned to the same rows"
        )
    if len(eras) == 0:
        raise InvalidArgument("consistency: no validation rows")
    unknown = np.flatnonzero(np.isnan(targets))
    if unknown.size:
        raise FailedPrecondition(
            f"consistency: {unknown.size} validation targets are unknown "
            f"(first rows {unknown[:10].tolist()}); "
            "it can only be computed where the targets are known"
        )
    era_values, era_index = np.unique(eras, return_inverse=True)
    losses = logloss_terms(predictions, targets)
    sums = np.bincount(era_index, weights=losses, minlength=len(era_values))
    counts = np.bincount(era_index, minlength=len(era_values))
    return ConsistencyResult(eras=era_values, era_logloss=sums / counts, benchmark=benchmark)
