"""Fixtures of the leaderboard tests: stubs on the real servers, and boards seeded through the
leaderboard's own publish handler into its real database (scoring is not needed for those)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import grpc
import pytest_asyncio

from crowdquant.leaderboard.v1 import leaderboard_service_pb2_grpc as lb_grpc
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as sub_grpc
from services.leaderboard.domain.boards import ModelResult, RoundBoard, Source
from services.leaderboard.domain.metrics import Metric, Score
from services.leaderboard.usecases.publish import store_round
from shared.db import Database

NAN = math.nan
T = "lbt"
ROUND_1 = [("a", 0.01, 0.0, 0.02), ("b", 0.02, 0.01, 0.03), ("c", 0.03, 0.02, 0.04)]
ROUND_2 = [("a", 0.05, 0.04, 0.06), ("b", 0.01, 0.0, 0.02)]
#            model  corr  ci_low  ci_high  mmc  stake  payout
ROUND_3 = [
    ("a", 0.04, 0.03, 0.05, 0.01, 5000, 120),
    ("b", 0.02, 0.015, 0.035, 0.03, 7000, 0),
    ("c", 0.02, 0.0, 0.025, 0.02, 0, 0),
    ("d", 0.02, 0.018, 0.022, 0.0, 0, 0),
    ("e", -0.01, -0.02, 0.0, 0.05, 100, -5),
    ("f", 0.06, 0.055, 0.07, 0.01, 0, 0),
]
# Reputation of each model over rounds 3, 2, 1 with linear weights 3/6, 2/6, 1/6 (by hand).
REPUTATION_3 = {
    "a": 0.5 * 0.04 + 2 / 6 * 0.05 + 1 / 6 * 0.01,
    "b": 0.5 * 0.02 + 2 / 6 * 0.01 + 1 / 6 * 0.02,
    "c": (3 * 0.02 + 1 * 0.03) / 4,
    "d": 0.02,
    "e": -0.01,
    "f": 0.06,
}


def live_board(tournament_id: str, number: int, rows: list[tuple], *, payouts_known: bool = False) -> RoundBoard:
    """A published round from rows ``(model_id, corr, ci_low, ci_high[, mmc[, stake[, payout]]])``."""
    results = []
    for row in rows:
        model_id, corr, lo, hi, *rest = row
        scores = {Metric.CORR: Score(corr, lo, hi)}
        if rest:
            scores[Metric.MMC] = Score(rest[0], rest[0] - 0.01, rest[0] + 0.01)
        stake = rest[1] if len(rest) > 1 else 0
        payout = rest[2] if len(rest) > 2 else 0
        results.append(ModelResult(model_id, f"model {model_id}", f"owner of {model_id}", scores, stake, payout))
    metrics = (Metric.CORR, Metric.MMC) if any(Metric.MMC in r.scores for r in results) else (Metric.CORR,)
    return RoundBoard(
        tournament_id,
        number,
        Source.LIVE,
        Metric.CORR,
        metrics,
        tuple(results),
        meta_model={Metric.CORR: Score(0.02, 0.01, 0.03)},
        payouts_known=payouts_known,
        published_at=datetime.now(UTC),
    )


async def seed(database_url: str, board: RoundBoard) -> None:
    """Publish ``board`` as another replica would: through the handler, into the shared database."""
    database = Database(database_url, schema="leaderboard", pool_size=1)
    try:
        async with database.transaction() as conn:
            await store_round(conn, board)
    finally:
        await database.dispose()


@pytest_asyncio.fixture(scope="module")
async def seeded(services, database_url):
    """Rounds 1-3 of tournament ``lbt`` published, and the running leaderboard's cache synced."""
    for number, rows in ((1, ROUND_1), (2, ROUND_2), (3, ROUND_3)):
        await seed(database_url, live_board(T, number, rows, payouts_known=number == 3))
    cache = services["leaderboard"].ctx.extras["cache"]
    assert await cache.sync()
    return cache


@pytest_asyncio.fixture(scope="module")
async def lb(services):
    async with grpc.aio.insecure_channel(services["leaderboard"].address) as channel:
        yield lb_grpc.LeaderboardServiceStub(channel)


@pytest_asyncio.fixture(scope="module")
async def subs(services):
    async with grpc.aio.insecure_channel(services["submissions"].address) as channel:
        yield sub_grpc.SubmissionsServiceStub(channel)
