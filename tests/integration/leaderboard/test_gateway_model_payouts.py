"""A model page explains its payouts: each round's contribution with its interval, the payout, and why a
round that looked lucky paid nothing (over HTTP, on the real leaderboard and its database)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.leaderboard.domain.boards import ModelResult, Payout, RoundBoard, Source
from services.leaderboard.domain.metrics import Metric, Score
from services.leaderboard.store import rounds as rounds_repo
from shared.db import Database
from tests.integration.leaderboard.conftest import seed

T = "whypay"
LUCKY = (
    "not significant: contribution 0.012, but the lower bound of its interval is -0.003, not above zero "
    "(it may be luck)"
)


def board(number: int, rows: list[tuple[str, float, float, float, int, str]], *, known: bool) -> RoundBoard:
    results = tuple(
        ModelResult(
            model_id,
            f"model {model_id}",
            "someone",
            {Metric.CORR: Score(corr, lo, hi)},
            0,
            payout,
            "NOT_SIGNIFICANT" if why else "",
            why,
        )
        for model_id, corr, lo, hi, payout, why in rows
    )
    return RoundBoard(
        T,
        number,
        Source.LIVE,
        Metric.CORR,
        (Metric.CORR,),
        results,
        published_at=datetime.now(UTC),
        payouts_known=known,
    )


@pytest.fixture
async def http(services, database_url):
    await seed(
        database_url,
        board(
            1, [("skilled", 0.031, 0.012, 0.050, 700_000, ""), ("lucky", 0.012, -0.003, 0.027, 0, LUCKY)], known=True
        ),
    )
    await seed(
        database_url,
        board(2, [("skilled", 0.029, 0.010, 0.047, 0, ""), ("lucky", 0.015, -0.002, 0.031, 0, "")], known=False),
    )
    # round 2's allocation arrives after its publish (the late-payouts pass)
    database = Database(database_url, schema="leaderboard", pool_size=1)
    try:
        async with database.transaction() as conn:
            payouts = {
                "skilled": Payout(650_000),
                "lucky": Payout(0, "NOT_SIGNIFICANT", LUCKY.replace("0.012,", "0.015,")),
            }
            assert await rounds_repo.set_payouts(conn, T, 2, payouts)
            await rounds_repo.bump_version(conn)
    finally:
        await database.dispose()
    assert await services["leaderboard"].ctx.extras["cache"].sync()
    app = create_app(
        GatewaySettings(
            leaderboard_addr=services["leaderboard"].address,
            gateway_cache_seconds=0.0,
            gateway_rate_limit_per_second=10_000.0,
            gateway_rate_limit_burst=10_000,
        )
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.9", 5000)), base_url="http://gateway"
    ) as client:
        yield client


async def test_the_model_api_gives_each_rounds_interval_payout_and_reason(http):
    lucky = (await http.get("/api/v1/models/lucky")).json()
    rounds = {r["round_number"]: r for r in lucky["rounds"]}
    assert rounds[1]["metrics"]["corr"] == {"value": 0.012, "ci_low": -0.003, "ci_high": 0.027}
    assert rounds[1]["payout_satoshis"] == 0
    assert rounds[1]["zero_payout"] == {"code": "NOT_SIGNIFICANT", "detail": LUCKY}
    assert rounds[2]["zero_payout"]["detail"].startswith("not significant: contribution 0.015,")
    skilled = (await http.get("/api/v1/models/skilled")).json()
    assert [(r["payout_satoshis"], r["zero_payout"]) for r in skilled["rounds"]] == [(700_000, None), (650_000, None)]
    assert skilled["total_payout_satoshis"] == 1_350_000


async def test_the_model_page_shows_the_interval_and_why_a_round_paid_nothing(http):
    page = await http.get("/models/lucky")
    assert page.status_code == 200
    html = page.text
    assert "Why no payout" in html and "not significant" in html
    assert "the lower bound of its interval is -0.003, not above zero" in html
    assert '<span class="ci">-0.0030 … 0.0270</span>' in html
    skilled = (await http.get("/models/skilled")).text
    assert '<span class="ci">0.0120 … 0.0500</span>' in skilled and "+700,000" in skilled
