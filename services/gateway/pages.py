"""The web pages: the current leaderboard with a round switcher, reputation, and model pages.

Pages are rendered on the server (charts too, as SVG) from the same leaderboard calls as the
API, cached like API answers, and sent with a strict Content-Security-Policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crowdquant.common.v1 import common_pb2
from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as pb
from services.gateway import params, present, views
from services.gateway.answers import respond
from services.gateway.caching import Body, make_body
from services.gateway.state import Gateway
from services.gateway.upstream import HttpError

HTML = "text/html; charset=utf-8"
PAGE_ROWS = 500
TITLES = {
    400: "Bad request",
    404: "Not found",
    429: "Too many requests",
    502: "Unexpected answer",
    503: "Temporarily unavailable",
}


def error_page(err: HttpError) -> Body:
    text = views.message_page(TITLES.get(err.status, "Error"), err.message)
    return make_body(text.encode(), HTML, err.status, err.retry_after)


async def page(request: Request, key: Hashable, render: Callable[[], Awaitable[str]]) -> Response:
    gw: Gateway = request.app.state.gateway

    async def body() -> Body:
        try:
            return make_body((await render()).encode(), HTML)
        except HttpError as err:
            return error_page(err)

    answer, cached = await gw.cache.get(key, body)
    gw.metrics.cache.inc(result="hit" if cached else "miss")
    return respond(request, answer, gw.max_age, cors=False, extra={"content-security-policy": views.CSP})


def bad_request(request: Request, err: HttpError) -> Response:
    return respond(request, error_page(err), 0, cors=False, extra={"content-security-policy": views.CSP})


async def home(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        q = params.board_query(request.query_params, gw.tournament, PAGE_ROWS)
    except HttpError as err:
        return bad_request(request, err)

    async def render() -> str:
        try:
            board = await gw.leaderboard.board(
                pb.GetRoundLeaderboardRequest(
                    round=common_pb2.RoundRef(tournament_id=q.tournament, round_number=q.round),
                    metric=q.metric,
                    page_size=q.page_size,
                    page_token=q.page_token,
                )
            )
        except HttpError as err:
            if err.status == 404 and q.round == 0:
                return views.message_page(
                    "No leaderboard yet",
                    "No round is open or published yet. Come back when the first round opens.",
                    "/api/v1/rounds",
                    "See the API",
                )
            raise
        tournament = board.round.tournament_id
        listed = await gw.leaderboard.rounds(pb.ListRoundsRequest(tournament_id=tournament, page_size=100))
        return views.board_page(present.board(board), present.rounds(listed)["rounds"], q.tournament)

    return await page(request, ("page-board", q), render)


async def reputation(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        q = params.reputation_query(request.query_params, gw.tournament, PAGE_ROWS)
    except HttpError as err:
        return bad_request(request, err)

    async def render() -> str:
        rep = await gw.leaderboard.reputation(
            pb.GetReputationRequest(
                tournament_id=q.tournament,
                metric=q.metric,
                window_rounds=q.window,
                page_size=q.page_size,
                page_token=q.page_token,
            )
        )
        listed = present.rounds(
            await gw.leaderboard.rounds(pb.ListRoundsRequest(tournament_id=rep.last_round.tournament_id, page_size=10))
        )["rounds"]
        metrics = next((r["metrics"] for r in listed if r["source"] == "live"), [present.METRICS[rep.metric]])
        return views.reputation_page(present.reputation(rep), metrics, q.tournament)

    return await page(request, ("page-reputation", q), render)


async def model(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        model_id = params.model_id(request.path_params["model_id"])
    except HttpError as err:
        return bad_request(request, err)

    async def render() -> str:
        return views.model_page(present.profile(await gw.leaderboard.profile(model_id)))

    return await page(request, ("page-model", model_id), render)


async def not_found(request: Request) -> Response:
    return bad_request(request, HttpError(404, "NOT_FOUND", f"There is no page at {request.url.path[:100]}."))


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/reputation", reputation, methods=["GET"]),
    Route("/models/{model_id:path}", model, methods=["GET"]),
]
