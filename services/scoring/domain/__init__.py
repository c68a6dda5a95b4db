"""Pure scoring math of crowdquant: no gRPC, no database, only numpy and scipy.

* ``metrics``: CORR and MMC exactly as numerai-tools computes them, logloss and AUC, for a matrix of
  submissions at once, over all rows and per era.
* ``eras``: mean, std, sharpe, max drawdown and consistency of per-era series.
* ``meta_model``: the stake-weighted meta model and the cross-fitted learned stacker.
* ``ladder``: the parameter-free Ladder that guards public validation scores.
* ``bootstrap``: confidence intervals over eras and statistical ties between neighbours.
"""

from .bootstrap import ConfidenceIntervals, bootstrap_mean_ci, tied_with_next
from .eras import EraStats, RoundSummary, consistency, era_stats, max_drawdown, summarize_round
from .errors import InvalidScoringInput
from .ladder import LadderDecision, LadderState, ladder_submit
from .meta_model import StackerFit, fit_stacker, gaussianised_submissions, stake_weighted_meta_model
from .metrics import MetricValues, RoundScores, corr_mmc, per_row_logloss, score_submissions

__all__ = [
    "ConfidenceIntervals",
    "EraStats",
    "InvalidScoringInput",
    "LadderDecision",
    "LadderState",
    "MetricValues",
    "RoundScores",
    "RoundSummary",
    "StackerFit",
    "bootstrap_mean_ci",
    "consistency",
    "corr_mmc",
    "era_stats",
    "fit_stacker",
    "gaussianised_submissions",
    "ladder_submit",
    "max_drawdown",
    "per_row_logloss",
    "score_submissions",
    "stake_weighted_meta_model",
    "summarize_round",
    "tied_with_next",
]
