"""Generated hostile requests to every gateway route: always a clear JSON (or page) answer with
status 200/304/400/404/405/429, never a 5xx or a traceback, and never a write."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.leaderboard.conftest import T
from tests.integration.leaderboard.test_gateway_http import gateway
from tests.support import table_checksums

ROUTES = [
    "/",
    "/reputation",
    "/models/{x}",
    "/api/v1/rounds",
    "/api/v1/leaderboard",
    "/api/v1/reputation",
    "/api/v1/models/{x}",
    "/healthz",
    "/metrics",
    "/api/v1/{x}",
    "/{x}",
]
PARAMS = ["tournament", "round", "metric", "page_size", "page_token", "window"]
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "-1",
            "0",
            "1",
            "99999999999999999999",
            "nan",
            "inf",
            "CORR",
            "mmc",
            "logloss",
            T,
            "' OR 1=1 --",
            "../../etc/passwd",
            "%00",
            "🦄" * 20,
            "x" * 3000,
        ]
    ),
)


@st.composite
def hostile(draw):
    route = draw(st.sampled_from(ROUTES)).replace(
        "{x}",
        draw(
            st.text(
                alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#"),
                min_size=1,
                max_size=40,
            )
        ),
    )
    params = draw(st.dictionaries(st.sampled_from(PARAMS), VALUES, max_size=4))
    method = draw(st.sampled_from(["GET", "GET", "GET", "HEAD", "POST", "DELETE", "PUT"]))
    return method, route, params


@pytest.fixture(scope="module")
def cases():
    out = []

    @settings(max_examples=400, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(hostile())
    def collect(case):
        out.append(case)

    collect()
    return out


async def test_hostile_gateway_requests(services, seeded, database_url, cases):
    before = await table_checksums(database_url, ["leaderboard"])
    async with gateway(services) as http:
        for method, route, params in cases:
            try:
                resp = await http.request(method, route, params=params)
            except httpx.InvalidURL:
                continue
            assert resp.status_code in (200, 304, 400, 404, 405, 429), (method, route, params, resp.status_code)
            if route.startswith("/api/") and resp.status_code >= 400 and method == "GET":
                body = resp.json()
                assert body["error"]["message"], body
            assert b"Traceback" not in resp.content
    assert await table_checksums(database_url, ["leaderboard"]) == before
