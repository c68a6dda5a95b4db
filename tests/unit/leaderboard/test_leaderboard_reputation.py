"""Reputation weights and the weighted average, checked against hand-computed numbers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from services.leaderboard.domain.boards import ModelResult, RoundBoard, Source
from services.leaderboard.domain.catalog import Catalog
from services.leaderboard.domain.errors import BadWeights
from services.leaderboard.domain.metrics import Metric, Score
from services.leaderboard.domain.reputation import WeightScheme, reputations, weighted_reputation

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_weight_schemes_are_normalised_most_recent_first():
    assert WeightScheme.parse("linear").weights(4) == pytest.approx((0.4, 0.3, 0.2, 0.1))
    assert WeightScheme.parse("equal").weights(4) == pytest.approx((0.25,) * 4)
    assert WeightScheme.parse(" Halving ").weights(3) == pytest.approx((4 / 7, 2 / 7, 1 / 7))
    explicit = WeightScheme.parse("3,1")
    assert explicit.weights(2) == pytest.approx((0.75, 0.25)) and explicit.weights(1) == (1.0,)
    assert explicit.max_window == 2


@pytest.mark.parametrize("spec", ["", "fancy", "1,-1", "0,0", "1,nan", "1,,2"])
def test_bad_weight_specs_are_refused(spec):
    with pytest.raises(BadWeights):
        WeightScheme.parse(spec)


def test_window_outside_the_scheme_is_refused():
    with pytest.raises(BadWeights, match="between 1 and 2"):
        WeightScheme.parse("0.5,0.5").weights(3)
    with pytest.raises(BadWeights):
        WeightScheme.parse("linear").weights(0)


def test_missing_rounds_renormalise_the_weights():
    weights = WeightScheme.parse("linear").weights(3)  # 3/6, 2/6, 1/6
    value, counted = weighted_reputation([0.02, None, 0.05], weights)
    assert value == pytest.approx((3 * 0.02 + 1 * 0.05) / 4) and counted == 2
    assert math.isnan(weighted_reputation([None, math.nan], weights)[0])
    reps = reputations([{"a": 0.1}, {"a": 0.0, "b": 0.4}], WeightScheme.parse("equal").weights(2))
    assert reps["a"] == (pytest.approx(0.05), 2) and reps["b"] == (pytest.approx(0.4), 1)


def _round(number: int, scores: dict[str, float]) -> RoundBoard:
    results = tuple(
        ModelResult(m, m.upper(), "p", {Metric.CORR: Score(v)}, stake_satoshis=number * 10) for m, v in scores.items()
    )
    return RoundBoard(
        "t", number, Source.LIVE, Metric.CORR, (Metric.CORR,), results, published_at=T0 + timedelta(days=number)
    )


def test_catalog_reputation_board_uses_the_last_n_rounds_and_ranks_with_ties():
    catalog = Catalog(
        [
            _round(1, {"a": 1.0, "b": 1.0}),
            _round(2, {"a": 0.01, "b": 0.03, "c": 0.02}),
            _round(3, {"a": 0.03, "b": 0.01, "c": 0.02}),
        ],
        version=1,
        built_at=T0,
    )
    rep = catalog.reputation("t", Metric.CORR, WeightScheme.parse("linear").weights(2))  # 2/3 newest, 1/3
    got = {s.model_id: (s.rank, s.value, s.rounds_counted, s.stake_satoshis) for s in rep.standings}
    assert got["a"][1] == pytest.approx(2 / 3 * 0.03 + 1 / 3 * 0.01)
    assert got["b"][1] == pytest.approx(2 / 3 * 0.01 + 1 / 3 * 0.03)
    assert got["c"][1] == pytest.approx(0.02)
    assert [s.model_id for s in rep.standings] == ["a", "c", "b"]
    assert got["a"][2] == 2 and got["a"][3] == 30
    assert rep.weights == pytest.approx((2 / 3, 1 / 3))
    assert [b.round_number for b in rep.rounds] == [3, 2]


def test_catalog_indexes_history_and_latest_tournament():
    other = RoundBoard(
        "u",
        1,
        Source.LIVE,
        Metric.CORR,
        (Metric.CORR,),
        (ModelResult("x", "X", "p", {Metric.CORR: Score(0.1)}),),
        published_at=T0 + timedelta(days=9),
    )
    catalog = Catalog([_round(1, {"a": 0.1}), _round(2, {"a": 0.2}), other], version=3, built_at=T0)
    assert [b.round_number for b in catalog.history("a")] == [1, 2]
    assert catalog.latest_tournament == "u"
    assert [b.round_number for b in catalog.rounds_of("t")] == [2, 1]
    assert catalog.round("t", 5) is None and catalog.history("nobody") == []


def test_settings_refuse_weights_the_window_cannot_use(monkeypatch):
    from services.leaderboard.settings import LeaderboardSettings
    from shared.config import ConfigError, load_settings

    monkeypatch.setenv("CROWDQUANT_LEADERBOARD_REPUTATION_WEIGHTS", "0.5,0.3,0.2")
    monkeypatch.setenv("CROWDQUANT_LEADERBOARD_REPUTATION_WINDOW_ROUNDS", "3")
    settings = load_settings(LeaderboardSettings)
    assert settings.weight_scheme.weights(3) == pytest.approx((0.5, 0.3, 0.2))
    monkeypatch.setenv("CROWDQUANT_LEADERBOARD_REPUTATION_WINDOW_ROUNDS", "4")
    with pytest.raises(ConfigError, match="REPUTATION_WINDOW_ROUNDS"):
        load_settings(LeaderboardSettings)
    monkeypatch.setenv("CROWDQUANT_LEADERBOARD_REPUTATION_WEIGHTS", "steep")
    with pytest.raises(ConfigError, match="CROWDQUANT_LEADERBOARD_REPUTATION_WEIGHTS"):
        load_settings(LeaderboardSettings)
