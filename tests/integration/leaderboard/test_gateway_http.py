"""The public gateway over real HTTP semantics (its ASGI app in-process) on the real leaderboard:
JSON API, ETag/304, Cache-Control, CORS, rate limiting, errors, pages, health and metrics."""

from __future__ import annotations

import re
from dataclasses import replace

import httpx
import pytest

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.integration.leaderboard.conftest import REPUTATION_3, T, live_board, seed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gateway(services, *, client=("203.0.113.7", 5000), clock=None, **settings):
    values = {
        "leaderboard_addr": services["leaderboard"].address,
        "gateway_cache_seconds": 0.0,
        "gateway_rate_limit_per_second": 10_000.0,
        "gateway_rate_limit_burst": 10_000,
        **settings,
    }
    app = create_app(GatewaySettings(**values), **({"clock": clock} if clock else {}))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=client), base_url="http://gateway")


@pytest.fixture
async def http(services, seeded):
    async with gateway(services) as client:
        yield client


async def test_leaderboard_json_ranks_with_ties_and_cors(http):
    resp = await http.get("/api/v1/leaderboard", params={"tournament": T})
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert resp.headers["access-control-allow-origin"] == "*"
    assert resp.headers["x-content-type-options"] == "nosniff"  # successful JSON answers too
    assert resp.headers["cache-control"] == "public, max-age=0"
    assert re.fullmatch(r'"[0-9a-f]{32}-gz"', resp.headers["etag"])  # httpx accepts gzip, as browsers do
    assert resp.headers["content-encoding"] == "gzip" and resp.headers["vary"] == "Accept-Encoding"
    data = resp.json()
    assert data["round"]["round_number"] == 3 and data["source"] == "live" and data["metric"] == "corr"
    assert [(x["rank"], x["model_id"]) for x in data["entries"]] == [
        (1, "f"),
        (2, "a"),
        (3, "b"),
        (3, "c"),
        (3, "d"),
        (6, "e"),
    ]
    a = data["entries"][1]
    assert a["metrics"]["corr"] == {"value": 0.04, "ci_low": 0.03, "ci_high": 0.05}
    assert a["tied_with_next"] and a["stake_satoshis"] == 5000 and a["payout_satoshis"] == 120
    by_mmc = (await http.get("/api/v1/leaderboard", params={"tournament": T, "round": "3", "metric": "MMC"})).json()
    assert [(x["rank"], x["model_id"]) for x in by_mmc["entries"]][:5] == [
        (1, "e"),
        (2, "b"),
        (3, "c"),
        (4, "a"),
        (4, "f"),
    ]


async def test_etag_gives_304_until_the_content_changes(http, services, database_url):
    url = f"/api/v1/leaderboard?tournament={T}&round=3"
    first = await http.get(url)
    etag = first.headers["etag"]
    same = await http.get(url, headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    assert (await http.get(url, headers={"If-None-Match": f'"other", W/{etag}'})).status_code == 304
    assert (await http.get(url, headers={"If-None-Match": '"other"'})).status_code == 200
    # a page is served with its own validator
    page = await http.get("/", params={"tournament": T, "round": 3})
    assert (
        await http.get("/", params={"tournament": T, "round": 3}, headers={"If-None-Match": page.headers["etag"]})
    ).status_code == 304


async def test_gzip_and_identity_are_two_representations(http):
    url = f"/api/v1/leaderboard?tournament={T}&round=3"
    plain = await http.get(url, headers={"Accept-Encoding": "identity"})
    packed = await http.get(url, headers={"Accept-Encoding": "br;q=1, gzip;q=0.5"})
    refused = await http.get(url, headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in plain.headers and "content-encoding" not in refused.headers
    assert packed.headers["content-encoding"] == "gzip" and plain.json() == packed.json()
    assert plain.headers["etag"] != packed.headers["etag"] and plain.headers["vary"] == "Accept-Encoding"
    assert int(plain.headers["content-length"]) > 3 * int(packed.headers["content-length"])
    again = await http.get(url, headers={"Accept-Encoding": "identity", "If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304
    other = await http.get(url, headers={"Accept-Encoding": "identity", "If-None-Match": packed.headers["etag"]})
    assert other.status_code == 200


async def test_a_new_publish_changes_what_the_gateway_serves(services, seeded, database_url):
    clock = Clock()
    async with gateway(services, clock=clock, gateway_cache_seconds=5.0) as http:
        url = "/api/v1/leaderboard?tournament=lbnew"
        await seed(database_url, live_board("lbnew", 1, [("n1", 0.01, 0.0, 0.02)]))
        await seeded.sync()
        before = await http.get(url)
        assert before.json()["round"]["round_number"] == 1 and before.headers["cache-control"] == "public, max-age=5"
        await seed(database_url, live_board("lbnew", 2, [("n1", 0.03, 0.02, 0.04), ("n2", 0.02, 0.0, 0.03)]))
        await seeded.sync()
        cached = await http.get(url, headers={"If-None-Match": before.headers["etag"]})
        assert cached.status_code == 304  # within the cache period the gateway reuses its answer
        clock.now += 5.0
        after = await http.get(url, headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200 and after.json()["round"]["round_number"] == 2
        assert after.headers["etag"] != before.headers["etag"]
        metrics = (await http.get("/metrics")).text
        assert 'crowdquant_gateway_cache_total{result="hit"} 1' in metrics
        assert 'crowdquant_gateway_upstream_calls_total{code="OK",rpc="GetRoundLeaderboard"} 2' in metrics


async def test_pages_of_the_api_neither_skip_nor_repeat(http):
    seen, token = [], ""
    while True:
        data = (
            await http.get(
                "/api/v1/leaderboard", params={"tournament": T, "round": 3, "page_size": 4, "page_token": token}
            )
        ).json()
        seen += [x["model_id"] for x in data["entries"]]
        token = data["next_page_token"]
        if not token:
            break
    assert seen == ["f", "a", "b", "c", "d", "e"]


async def test_reputation_rounds_and_models(http):
    rep = (await http.get("/api/v1/reputation", params={"tournament": T, "window": 3})).json()
    assert rep["weights"] == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    assert {x["model_id"]: x["reputation"] for x in rep["entries"]} == pytest.approx(REPUTATION_3)
    rounds = (await http.get("/api/v1/rounds", params={"tournament": T})).json()
    assert [r["round_number"] for r in rounds["rounds"]][-3:] == [3, 2, 1]
    model = (await http.get("/api/v1/models/a")).json()
    assert [r["round_number"] for r in model["rounds"]][:3] == [1, 2, 3] and model["total_payout_satoshis"] == 120


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/api/v1/models/m_unknown", 404, "m_unknown"),
        (f"/api/v1/leaderboard?tournament={T}&round=99", 404, "neither open nor published"),
        (f"/api/v1/leaderboard?tournament={T}&metric=sharpe", 400, "metric"),
        (f"/api/v1/leaderboard?tournament={T}&round=three", 400, "round"),
        (f"/api/v1/leaderboard?tournament={T}&page_size=0", 400, "page_size"),
        (f"/api/v1/leaderboard?tournament={T}&page_token=%00", 400, "page_token"),
        (f"/api/v1/leaderboard?tournament={T}&round=3&metric=auc", 400, "AUC"),
        ("/api/v1/reputation?tournament=Bad_Id", 400, "tournament"),
        ("/api/v1/nothing", 404, "no API route"),
    ],
)
async def test_errors_are_clear_json(http, url, status, words):
    resp = await http.get(url)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == status and words.lower() in error["message"].lower()
    assert resp.headers["access-control-allow-origin"] == "*" and resp.headers["cache-control"] == "no-store"
    assert resp.headers["x-content-type-options"] == "nosniff"


async def test_read_only_and_preflight(http):
    assert (await http.post("/api/v1/leaderboard")).status_code == 405
    pre = await http.options(
        "/api/v1/leaderboard", headers={"Origin": "https://example.org", "Access-Control-Request-Method": "GET"}
    )
    assert pre.status_code == 204 and "GET" in pre.headers["access-control-allow-methods"]
    assert pre.headers["access-control-allow-origin"] == "*"


async def test_rate_limit_answers_429_with_retry_after(services, seeded):
    clock = Clock()
    async with gateway(
        services,
        clock=clock,
        gateway_rate_limit_per_second=0.5,
        gateway_rate_limit_burst=3,
        gateway_trusted_proxies="203.0.113.7",
    ) as http:
        url = f"/api/v1/rounds?tournament={T}"
        assert [(await http.get(url)).status_code for _ in range(3)] == [200, 200, 200]
        refused = await http.get(url)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
        assert refused.json()["error"]["code"] == 429 and "retry in 2 s" in refused.json()["error"]["message"]
        assert refused.headers["access-control-allow-origin"] == "*"
        assert (await http.get("/")).status_code == 429
        assert (await http.get("/healthz")).status_code == 200 and (await http.get("/metrics")).status_code == 200
        # behind the trusted proxy, each forwarded client has its own bucket; a forged left part is ignored
        other = {"X-Forwarded-For": "198.51.100.1, 198.51.100.9"}
        assert (await http.get(url, headers=other)).status_code == 200
        clock.now += 2.0
        assert (await http.get(url)).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert "crowdquant_gateway_rate_limited_total 2" in metrics
    async with gateway(services, clock=clock, gateway_rate_limit_per_second=0.5, gateway_rate_limit_burst=1) as http:
        assert (await http.get(url)).status_code == 200
        # the peer is not a trusted proxy: its X-Forwarded-For is not believed
        assert (await http.get(url, headers={"X-Forwarded-For": "198.51.100.2"})).status_code == 429


async def test_upstream_down_is_503_and_health_stays_up(services):
    async with gateway(services, leaderboard_addr="127.0.0.1:1", gateway_upstream_deadline_seconds=0.5) as http:
        resp = await http.get("/api/v1/leaderboard")
        assert resp.status_code == 503 and resp.headers["retry-after"] == "2"
        assert resp.json()["error"]["status"] == "UNAVAILABLE"
        assert (await http.get("/")).status_code == 503
        health = await http.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok"}


async def test_pages_render_tables_and_charts(http):
    home = await http.get("/", params={"tournament": T})
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in home.headers["content-security-policy"]
    html = home.text
    assert html.count('<tr><td class="num rank"') == 6 and 'href="/models/f"' in html
    assert '<option value="3" selected>' in html and "≈" in html
    model = await http.get("/models/a")
    assert model.status_code == 200 and model.text.count('<svg class="chart"') == 2
    assert model.text.count('<circle class="dot"') == 4  # CORR in rounds 1-3, MMC in round 3 only
    missing = await http.get("/models/m_unknown")
    assert missing.status_code == 404 and "m_unknown" in missing.text
    assert (await http.get("/reputation", params={"tournament": T})).status_code == 200
    assert (await http.get("/nowhere")).status_code == 404
    css = await http.get("/static/app.css")
    assert css.status_code == 200 and "max-age=3600" in css.headers["cache-control"]


async def test_open_round_page_shows_the_ladder_board(http, services, subs, keys):
    from crowdquant.common.v1 import common_pb2
    from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
    from tests.integration.conftest import md
    from tests.integration.submissions.conftest import SMALL

    await subs.CreateTournament(
        sub_pb.CreateTournamentRequest(
            request_id="t-gwopen",
            tournament_id="gwopen",
            display_name="Open",
            target_kind=common_pb2.TARGET_KIND_GRADED,
            network=common_pb2.BITCOIN_NETWORK_BITCOINLIB_TEST,
        ),
        metadata=md(keys.operator),
    )
    await subs.OpenRound(
        sub_pb.OpenRoundRequest(request_id="gwopen-1", tournament_id="gwopen", generated=SMALL),
        metadata=md(keys.operator),
    )
    await services["leaderboard"].ctx.extras["open_rounds"].refresh("gwopen")
    data = (await http.get("/api/v1/leaderboard", params={"tournament": "gwopen"})).json()
    # graded targets: the Ladder shows CORR (no upload yet, so the board is empty)
    assert data["source"] == "validation" and data["round"]["round_number"] == 1 and data["metric"] == "corr"
    assert data["round"]["publish_time"] is None
    page = await http.get("/", params={"tournament": "gwopen"})
    assert page.status_code == 200 and "Open round · validation" in page.text
    assert "Stake" not in page.text and "No scores yet in this round" in page.text
    rounds = (await http.get("/api/v1/rounds", params={"tournament": "gwopen"})).json()["rounds"]
    assert [(r["round_number"], r["source"]) for r in rounds] == [(1, "validation")]


async def test_a_zero_payout_shows_its_reason_in_the_page_and_the_json(services, seeded, database_url):
    board = live_board(
        "lbwhy",
        1,
        [("w1", 0.03, 0.02, 0.04, 0.01, 1000, 700), ("w2", 0.02, 0.01, 0.03, 0.01, 1000, 0)],
        payouts_known=True,
    )
    copied = replace(
        board.results[1],
        payout_reason="NOT_ORIGINAL",
        payout_detail="not original: |Pearson| 0.9999 with earlier submission w1 v1 (> 0.95)",
    )
    await seed(database_url, replace(board, results=(board.results[0], copied)))
    await seeded.sync()
    async with gateway(services) as http:
        api = (await http.get("/api/v1/leaderboard", params={"tournament": "lbwhy"})).json()
        by_model = {x["model_id"]: x for x in api["entries"]}
        assert by_model["w1"]["zero_payout"] is None and by_model["w1"]["payout_satoshis"] == 700
        assert by_model["w2"]["zero_payout"] == {
            "code": "NOT_ORIGINAL",
            "detail": "not original: |Pearson| 0.9999 with earlier submission w1 v1 (> 0.95)",
        }
        html = (await http.get("/", params={"tournament": "lbwhy"})).text
        row = next(r for r in html.split("<tr>") if 'href="/models/w2"' in r)
        title = "not original: |Pearson| 0.9999 with earlier submission w1 v1 (&gt; 0.95)"
        assert f'<span class="ci reason" title="{title}">not original</span>' in row
