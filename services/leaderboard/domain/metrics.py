"""The metrics a board can be ranked by, their direction, and one metric's public value.

Scores are floats (NaN when undefined); a confidence interval is NaN where none exists (the
Ladder's validation scores).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

NAN = float("nan")


class Metric(StrEnum):
    LOGLOSS = "logloss"
    AUC = "auc"
    CORR = "corr"
    MMC = "mmc"

    @property
    def higher_is_better(self) -> bool:
        """Logloss is a loss; every other metric is a score."""
        return self is not Metric.LOGLOSS

    @property
    def label(self) -> str:
        return {"logloss": "Logloss", "auc": "AUC", "corr": "CORR", "mmc": "MMC"}[self.value]


#: Display and storage order of metrics.
METRIC_ORDER: tuple[Metric, ...] = (Metric.CORR, Metric.MMC, Metric.LOGLOSS, Metric.AUC)


def main_metric(graded: bool) -> Metric:
    """The metric a round is ranked by by default: CORR for graded targets, logloss for binary ones
    (the same default scoring's ListRoundScores uses)."""
    return Metric.CORR if graded else Metric.LOGLOSS


@dataclass(frozen=True)
class Score:
    """A metric's mean over eras and its confidence interval."""

    value: float
    ci_low: float = NAN
    ci_high: float = NAN

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.ci_low) or math.isnan(self.ci_high))
