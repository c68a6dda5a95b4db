"""Ranking with ties, statistical ties from intervals, and keyset pages of a ranked board."""

from __future__ import annotations

import math

import pytest

from services.leaderboard.domain.boards import ModelResult, RankedBoard, RoundBoard, Source
from services.leaderboard.domain.errors import MetricNotScored
from services.leaderboard.domain.metrics import Metric, Score
from services.leaderboard.domain.ranking import competition_ranks, sort_key
from services.leaderboard.domain.ties import intervals_overlap, neighbour_ties

NAN = math.nan


def result(model_id: str, corr: float, lo: float = NAN, hi: float = NAN, logloss: float | None = None) -> ModelResult:
    scores = {Metric.CORR: Score(corr, lo, hi)}
    if logloss is not None:
        scores[Metric.LOGLOSS] = Score(logloss)
    return ModelResult(model_id, f"name {model_id}", "someone", scores)


def board(*results: ModelResult, metrics=(Metric.CORR,)) -> RoundBoard:
    return RoundBoard("t", 1, Source.LIVE, Metric.CORR, metrics, tuple(results))


def test_competition_ranking_shares_ranks_and_skips_places():
    values = [0.05, 0.03, 0.03, 0.01, 0.01, 0.01, -0.02]
    keys = sorted(sort_key(v, True, f"m{i}") for i, v in enumerate(values))
    assert competition_ranks(keys) == [1, 2, 2, 4, 4, 4, 7]


def test_undefined_values_sort_last_and_share_a_rank():
    ranked = RankedBoard(board(result("a", NAN), result("b", 0.1), result("c", NAN), result("d", -0.1)))
    assert [s.result.model_id for s in ranked.standings] == ["b", "d", "a", "c"]
    assert [s.rank for s in ranked.standings] == [1, 2, 3, 3]


def test_logloss_ranks_lowest_first_and_equal_values_by_model_id():
    b = board(
        result("z", 0.0, logloss=0.69),
        result("a", 0.0, logloss=0.70),
        result("m", 0.0, logloss=0.69),
        metrics=(Metric.CORR, Metric.LOGLOSS),
    )
    ranked = RankedBoard(b, Metric.LOGLOSS)
    assert [(s.rank, s.result.model_id) for s in ranked.standings] == [(1, "m"), (1, "z"), (3, "a")]
    assert ranked.rank_of("a") == 3 and ranked.rank_of("nobody") == 0


def test_metric_without_values_is_refused_with_the_choices():
    with pytest.raises(MetricNotScored, match="no AUC scores; choose one of CORR"):
        RankedBoard(board(result("a", 0.1)), Metric.AUC)


def test_intervals_overlap_closed_and_nan_means_no_interval():
    assert intervals_overlap((0.0, 1.0), (1.0, 2.0))
    assert not intervals_overlap((0.0, 1.0), (1.01, 2.0))
    assert not intervals_overlap((NAN, 1.0), (0.0, 2.0))
    assert neighbour_ties([(0.5, 0.9), (0.4, 0.6), (0.1, 0.3), (0.2, 0.35)]) == [
        (False, True),
        (True, False),
        (False, True),
        (True, False),
    ]
    assert neighbour_ties([]) == [] and neighbour_ties([(0.0, 1.0)]) == [(False, False)]


def test_ranked_board_flags_statistical_neighbours():
    ranked = RankedBoard(
        board(result("a", 0.05, 0.03, 0.07), result("b", 0.04, 0.02, 0.06), result("c", 0.01, -0.01, 0.015))
    )
    flags = [(s.result.model_id, s.tied_with_previous, s.tied_with_next) for s in ranked.standings]
    assert flags == [("a", False, True), ("b", True, False), ("c", False, False)]


def test_keyset_pages_neither_skip_nor_repeat_even_when_the_board_changes():
    values = [0.1, 0.05, 0.05, 0.05, 0.02, NAN, -0.01, 0.05, 0.3]
    ranked = RankedBoard(board(*(result(f"m{i}", v) for i, v in enumerate(values))))
    seen, after = [], None
    while True:
        page, after = ranked.page(after, 2)
        seen += [s.result.model_id for s in page]
        if after is None:
            break
    assert seen == [s.result.model_id for s in ranked.standings]
    assert len(set(seen)) == len(values)
    first, after = ranked.page(None, 3)
    grown = RankedBoard(board(*(result(f"m{i}", v) for i, v in enumerate(values)), result("new", 0.5)))
    rest, _ = grown.page(after, 100)
    assert [s.result.model_id for s in first] + [s.result.model_id for s in rest] == [
        s.result.model_id for s in grown.standings if s.result.model_id != "new"
    ]
