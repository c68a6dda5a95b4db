"""The gateway's pure pieces: rate limiting and client addresses, validators and the answer cache,
SVG charts, Prometheus text, number formats and query checks (no network, no sleeping)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from services.gateway import formats, params
from services.gateway.caching import ResponseCache, accepts_gzip, make_body, matches
from services.gateway.charts import Series, bar_chart, line_chart, nice_ticks
from services.gateway.limits import TokenBuckets, client_address, retry_after
from services.gateway.metrics import GatewayMetrics
from services.gateway.settings import parse_networks
from services.gateway.upstream import HttpError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_bursts_then_refills_at_the_rate():
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0  # another client has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == 0.0 and buckets.take("a") > 0
    clock.now += 100
    assert [buckets.take("a") for _ in range(4)][-1] > 0  # refill stops at the burst size
    assert retry_after(0.01) == 1 and retry_after(1.2) == 2


def test_token_buckets_forget_the_oldest_clients_beyond_the_bound():
    buckets = TokenBuckets(rate=1.0, burst=1, max_clients=2, clock=Clock())
    buckets.take("a")
    buckets.take("b")
    buckets.take("c")
    assert buckets.take("a") == 0.0  # "a" was forgotten: a full bucket again


def test_client_address_believes_only_trusted_proxies():
    trusted = parse_networks("10.0.0.0/8, 192.0.2.1")
    assert client_address("203.0.113.5", "1.1.1.1", trusted) == "203.0.113.5"
    assert client_address("10.1.2.3", "198.51.100.7", trusted) == "198.51.100.7"
    assert client_address("10.1.2.3", "6.6.6.6, 198.51.100.7, 192.0.2.1", trusted) == "198.51.100.7"
    assert client_address("10.1.2.3", "10.9.9.9, 10.8.8.8", trusted) == "10.9.9.9"
    assert client_address("10.1.2.3", "garbage, 198.51.100.7", trusted) == "198.51.100.7"
    assert client_address("10.1.2.3", "198.51.100.7, garbage", trusted) == "10.1.2.3"
    assert client_address("10.1.2.3", None, trusted) == "10.1.2.3"
    assert client_address("10.1.2.3", "198.51.100.7", ()) == "10.1.2.3"
    assert parse_networks("") == () and parse_networks("::1")[0] == ipaddress.ip_network("::1")
    with pytest.raises(ValueError):
        parse_networks("not-an-address")


def test_etag_matching_is_weak_and_accepts_lists():
    body = make_body(b"{}", "application/json")
    assert body.etag.startswith('"') and len(body.etag) == 34
    assert matches(body.etag, body.etag) and matches(f'"x", W/{body.etag}', body.etag) and matches("*", body.etag)
    assert not matches(None, body.etag) and not matches('"x"', body.etag)
    assert make_body(b"{}", "application/json").etag == body.etag != make_body(b"[]", "application/json").etag


def test_gzip_is_used_only_when_accepted_and_worth_it():
    assert accepts_gzip("gzip, deflate, br") and accepts_gzip("br;q=1, gzip;q=0.2") and accepts_gzip("*")
    assert not accepts_gzip(None) and not accepts_gzip("identity") and not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("gzip;q=0.000") and not accepts_gzip("gzip;q=bad")
    small, large = make_body(b"{}", "application/json"), make_body(b"[" + b"1," * 2000 + b"1]", "application/json")
    assert small.gzipped is None and large.gzipped is not None and len(large.gzipped) < len(large.content) / 10
    assert large.gzip_etag == large.etag[:-1] + '-gz"'


async def test_answer_cache_renders_once_for_concurrent_requests_and_expires():
    clock = Clock()
    cache = ResponseCache(ttl=5.0, clock=clock)
    calls = []
    gate = asyncio.Event()

    async def render():
        calls.append(1)
        await gate.wait()
        return make_body(str(len(calls)).encode(), "text/plain")

    first = asyncio.create_task(cache.get("k", render))
    second = asyncio.create_task(cache.get("k", render))
    await asyncio.sleep(0)
    gate.set()
    (a, a_shared), (b, b_shared) = await first, await second
    assert a is b and len(calls) == 1 and not a_shared and b_shared
    assert (await cache.get("k", render)) == (a, True)
    clock.now += 5.0
    fresh, shared = await cache.get("k", render)
    assert fresh.content == b"2" and not shared


async def test_answer_cache_keeps_no_server_errors_and_stays_bounded():
    cache = ResponseCache(ttl=5.0, max_entries=2, clock=Clock())
    calls = []

    async def failing():
        calls.append(1)
        return make_body(b"down", "text/plain", status=503)

    await cache.get("x", failing)
    await cache.get("x", failing)
    assert len(calls) == 2

    async def fine():
        calls.append(1)
        return make_body(b"ok", "text/plain", status=404)

    for key in ("a", "b", "c", "a"):
        await cache.get(key, fine)
    assert len(calls) == 2 + 4  # "a" was pushed out by "b" and "c", so it rendered again

    async def broken():
        raise HttpError(502, "BAD_GATEWAY", "no")

    with pytest.raises(HttpError):
        await cache.get("y", broken)


def test_nice_ticks_cover_the_range_with_round_steps():
    assert nice_ticks(0.0, 0.04) == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])
    ticks = nice_ticks(-0.013, 0.027)
    assert ticks[0] <= -0.013 and ticks[-1] >= 0.027 and 0.0 in ticks
    assert len(nice_ticks(5.0, 5.0)) >= 2 and nice_ticks(float("nan"), 1.0) == [0.0]


def test_line_chart_draws_points_intervals_and_gaps():
    svg = line_chart(
        "Scores <by> round",
        ["R1", "R2", "R3", "R4"],
        [
            Series("CORR", [0.01, None, 0.03, 0.02], [0.0, None, 0.02, 0.01], [0.02, None, 0.04, 0.03]),
            Series("MMC", [0.0, 0.01, None, None]),
        ],
    )
    assert svg.startswith('<svg class="chart"') and svg.endswith("</svg>")
    assert svg.count('<circle class="dot"') == 5 and svg.count('<line class="ci"') == 3
    assert svg.count("<polyline") == 2  # CORR's R3-R4 and MMC's R1-R2; CORR's R1 stands alone
    assert "Scores &lt;by&gt; round" in svg and "<by>" not in svg
    assert "style=" not in svg  # the Content-Security-Policy allows no inline styles
    assert "No scores" in line_chart("Scores", ["R1"], [Series("CORR", [None])])


def test_bar_chart_marks_burns():
    svg = bar_chart("Payouts", ["R1", "R2"], [1500, -300], formats.compact, formats.signed_sats)
    assert svg.count('class="bar pos"') == 1 and svg.count('class="bar neg"') == 1
    assert "+1,500 sat" in svg and "+1.5k" in svg
    assert "No payouts" in bar_chart("Payouts", ["R1"], [0], formats.compact)


def test_prometheus_text():
    metrics = GatewayMetrics()
    metrics.requests.inc(route="/", status="200")
    metrics.requests.add((("route", "/"), ("status", "200")))
    metrics.duration.observe(0.003, route="/")
    metrics.duration.record(2.0, (("route", "/"),))
    metrics.duration.observe(30.0, route="/")
    text = metrics.render()
    assert 'crowdquant_gateway_requests_total{route="/",status="200"} 2' in text
    assert 'crowdquant_gateway_request_duration_seconds_bucket{route="/",le="0.005"} 1' in text
    assert 'crowdquant_gateway_request_duration_seconds_bucket{route="/",le="2.5"} 2' in text
    assert 'crowdquant_gateway_request_duration_seconds_bucket{route="/",le="+Inf"} 3' in text
    assert 'crowdquant_gateway_request_duration_seconds_count{route="/"} 3' in text
    assert "# TYPE crowdquant_gateway_rate_limited_total counter" in text and text.endswith("\n")


def test_amounts_read_well():
    assert formats.sats(12_345) == "12,345 sat" and formats.sats(-999_999) == "-999,999 sat"
    assert formats.sats(123_456_789) == "1.2346 BTC" and formats.signed_sats(2_000_000) == "+0.0200 BTC"
    assert formats.count(1234, signed=True) == "+1,234" and formats.count(-5, signed=True) == "-5"
    assert [formats.compact(v) for v in (0, 950, -15_000, 1_200_000)] == ["0", "+950", "-15k", "+1.2M"]
    assert formats.score(None) == "—" and formats.score(0.123456) == "0.1235"
    assert formats.when("2026-11-23T14:05:09Z") == "2026-11-23 14:05 UTC"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"round": "-1"}, "round"),
        ({"round": "1e3"}, "round"),
        ({"metric": "sharpe"}, "metric"),
        ({"page_size": "5000"}, "page_size"),
        ({"page_token": "a b"}, "page_token"),
        ({"tournament": "A!"}, "tournament"),
    ],
)
def test_bad_query_parameters_name_the_field(query, field):
    with pytest.raises(HttpError) as info:
        params.board_query(query, "", 100)
    assert info.value.status == 400 and info.value.message.startswith(field)


def test_query_defaults_and_normalisation():
    q = params.board_query({"round": "03", "metric": "MMC", "junk": "x"}, "main", 100)
    assert (q.tournament, q.round, q.page_size) == ("main", 3, 100)
    assert q == params.board_query({"round": "3", "metric": "mmc"}, "main", 100)
    assert params.reputation_query({}, "", 50).window == 0
    with pytest.raises(HttpError) as info:
        params.model_id("../../etc")
    assert info.value.status == 404
