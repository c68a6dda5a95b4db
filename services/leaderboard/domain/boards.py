"""A round's public results and its board ranked by one metric.

A ``RoundBoard`` is what readers may see of a round: the live scores (with intervals) of a
published round, or the Ladder's validation scores of the open round. ``RankedBoard`` orders it
by one metric with competition ranks and statistical-tie flags, and serves keyset pages.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.leaderboard.domain.errors import MetricNotScored
from services.leaderboard.domain.metrics import NAN, Metric, Score
from services.leaderboard.domain.ranking import SortKey, competition_ranks, sort_key
from services.leaderboard.domain.ties import neighbour_ties


class Source(StrEnum):
    """Which scores a board shows: validation (open round, Ladder) or live (published round)."""

    VALIDATION = "validation"
    LIVE = "live"


@dataclass(frozen=True)
class Payout:
    """A model's allocated amount in a round and, when it pays nothing, why."""

    amount: int
    reason: str = ""
    detail: str = ""


@dataclass(frozen=True)
class ModelResult:
    """One model's public result in one round."""

    model_id: str
    model_display_name: str
    participant_display_name: str
    scores: Mapping[Metric, Score]
    stake_satoshis: int = 0
    payout_satoshis: int = 0
    payout_reason: str = ""  # why the payout is 0 (a ZeroPayoutReason name, e.g. "NOT_ORIGINAL"); "" = paid
    payout_detail: str = ""  # the same for people

    def score(self, metric: Metric) -> Score:
        return self.scores.get(metric) or Score(NAN)


@dataclass(frozen=True)
class RoundBoard:
    """A round's public results; immutable (a change makes a new board)."""

    tournament_id: str
    round_number: int
    source: Source
    main_metric: Metric
    metrics: tuple[Metric, ...]
    results: tuple[ModelResult, ...]
    published_at: datetime | None = None
    meta_model: Mapping[Metric, Score] = field(default_factory=dict)
    payouts_known: bool = False

    @property
    def model_count(self) -> int:
        return len(self.results)

    @property
    def total_payout_satoshis(self) -> int:
        return sum(r.payout_satoshis for r in self.results)

    def require_metric(self, metric: Metric | None) -> Metric:
        """``metric`` or the main one; refused when this board has no values of it."""
        chosen = metric or self.main_metric
        if chosen not in self.metrics:
            offered = ", ".join(m.label for m in self.metrics)
            raise MetricNotScored(
                f"metric: round {self.round_number} has no {chosen.label} scores; choose one of {offered}",
                metadata={"field": "metric"},
            )
        return chosen


@dataclass(frozen=True)
class Standing:
    """A model's place on a ranked board."""

    rank: int
    result: ModelResult
    score: Score
    tied_with_previous: bool
    tied_with_next: bool


class RankedBoard:
    """A board ordered by one metric, best first, with ranks and tie flags for every entry."""

    def __init__(self, board: RoundBoard, metric: Metric | None = None) -> None:
        self.board = board
        self.metric = board.require_metric(metric)
        keyed = sorted(
            (
                (sort_key(r.score(self.metric).value, self.metric.higher_is_better, r.model_id), r)
                for r in board.results
            ),
            key=lambda pair: pair[0],
        )
        self.keys: list[SortKey] = [k for k, _ in keyed]
        ranks = competition_ranks(self.keys)
        scores = [r.score(self.metric) for _, r in keyed]
        ties = neighbour_ties([(s.ci_low, s.ci_high) for s in scores])
        self.standings: tuple[Standing, ...] = tuple(
            Standing(rank, r, s, prev, nxt)
            for rank, (_, r), s, (prev, nxt) in zip(ranks, keyed, scores, ties, strict=True)
        )
        self._rank_of = {st.result.model_id: st.rank for st in self.standings}

    def __len__(self) -> int:
        return len(self.standings)

    def rank_of(self, model_id: str) -> int:
        return self._rank_of.get(model_id, 0)

    def page(self, after: SortKey | None, size: int) -> tuple[Sequence[Standing], SortKey | None]:
        """Standings after the key ``after`` (None = from the top), and the key to continue from."""
        start, end = page_bounds(self.keys, after, size)
        return self.standings[start:end], (self.keys[end - 1] if end < len(self.keys) else None)


def page_bounds(keys: Sequence[SortKey], after: SortKey | None, size: int) -> tuple[int, int]:
    """Slice of a sorted key list following ``after``: a key removed or added between two pages
    moves the boundary with it, so nothing is skipped or served twice."""
    start = 0 if after is None else bisect_right(keys, after)
    return start, min(start + size, len(keys))
