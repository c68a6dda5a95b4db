"""The JSON API under /api/v1/: rounds, a round's leaderboard, reputation, a model's profile.

It is plain ASGI rather than framework routes because it is the hot path: a cached answer costs a
dictionary lookup and two ASGI messages. Each answer is rendered once per cache period for
identical queries (see ``caching``), carries an ETag and Cache-Control, and is readable
cross-origin. Errors are ``{"error": {"code", "status", "message"}}`` with the HTTP status as code.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from crowdquant.common.v1 import common_pb2
from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as pb
from services.gateway import params, present
from services.gateway.answers import (
    JSON,
    PREFLIGHT,
    answer_headers,
    error_body,
    json_bytes,
    not_modified,
    use_gzip,
)
from services.gateway.caching import Body, make_body
from services.gateway.state import Gateway
from services.gateway.upstream import HttpError

Fetch = Callable[[], Awaitable[Any]]
ROUTES = "see /api/v1/rounds, /api/v1/leaderboard, /api/v1/reputation, /api/v1/models/{model_id}"
HIT, MISS = (("result", "hit"),), (("result", "miss"),)
MAX_ALIASES = 4096


def _conditions(scope: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(If-None-Match, Accept-Encoding) of a request, in one pass over its headers."""
    if_none_match = accept_encoding = None
    for key, value in scope.get("headers", ()):
        if key == b"if-none-match":
            if_none_match = value.decode("latin-1")
        elif key == b"accept-encoding":
            accept_encoding = value.decode("latin-1")
    return if_none_match, accept_encoding


class Api:
    """The ASGI application of every path under /api/.

    A request line seen before maps straight to its checked query (``_known``), so a repeated
    request skips parsing; an unseen one is parsed and checked first, so made-up parameters still
    land on the same cache entry as the plain query.
    """

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self._known: OrderedDict[tuple[str, bytes], tuple[Hashable, Fetch]] = OrderedDict()
        self._headers: dict[tuple[str, int, bool], list[tuple[bytes, bytes]]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.handle(scope, send)

    async def handle(self, scope: dict[str, Any], send: Any) -> int:
        """Answer one request; returns the status sent (for the edge's metrics)."""
        method = scope["method"]
        if method == "OPTIONS":
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [(k.encode(), v.encode()) for k, v in PREFLIGHT.items()],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return 204
        if method not in ("GET", "HEAD"):
            return await self._error(
                send, HttpError(405, "METHOD_NOT_ALLOWED", "this API is read-only: use GET"), allow=True
            )
        line = (scope["path"], scope.get("query_string", b""))
        known = self._known.get(line)
        if known is None:
            try:
                query = dict(parse_qsl(line[1].decode("latin-1"), keep_blank_values=True))
                known = self.route(line[0], query)
            except HttpError as err:
                return await self._error(send, err)
            self._known[line] = known
            if len(self._known) > MAX_ALIASES:
                self._known.popitem(last=False)
        key, fetch = known

        async def render() -> Body:
            try:
                return make_body(json_bytes(await fetch()), JSON)
            except HttpError as err:
                return error_body(err)

        body, cached = await self.gw.cache.get(key, render)
        self.gw.metrics.cache.add(HIT if cached else MISS)
        if_none_match, accept_encoding = _conditions(scope)
        return await self._send(send, body, if_none_match, use_gzip(body, accept_encoding), method == "HEAD")

    async def _send(self, send: Any, body: Body, if_none_match: str | None, gzipped: bool, head_only: bool) -> int:
        max_age = self.gw.max_age
        if not_modified(body, if_none_match, gzipped):
            headers = [
                (k.encode(), v.encode())
                for k, v in answer_headers(body, max_age, True, gzipped).items()
                if k != "content-encoding"
            ]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return 304
        cached = (body.etag, body.status, gzipped)
        headers = self._headers.get(cached)
        content = body.gzipped if gzipped and body.gzipped is not None else body.content
        if headers is None:
            headers = [(k.encode(), v.encode()) for k, v in answer_headers(body, max_age, True, gzipped).items()]
            headers += [(b"content-type", body.media_type.encode()), (b"content-length", str(len(content)).encode())]
            if len(self._headers) > MAX_ALIASES:
                self._headers.clear()
            self._headers[cached] = headers
        await send({"type": "http.response.start", "status": body.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head_only else content})
        return body.status

    async def _error(self, send: Any, err: HttpError, allow: bool = False) -> int:
        body = error_body(err)
        await send(
            {
                "type": "http.response.start",
                "status": body.status,
                "headers": [
                    *((k.encode(), v.encode()) for k, v in answer_headers(body, 0, True).items()),
                    *([(b"allow", b"GET, HEAD, OPTIONS")] if allow else []),
                    (b"content-type", body.media_type.encode()),
                    (b"content-length", str(len(body.content)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.content})
        return body.status

    def route(self, path: str, query: dict[str, str]) -> tuple[Hashable, Fetch]:
        """The cache key and upstream call of a request; HttpError for a bad or unknown one."""
        gw = self.gw
        leaderboard = gw.leaderboard
        if path == "/api/v1/leaderboard":
            q = params.board_query(query, gw.tournament, gw.page_size)
            request = pb.GetRoundLeaderboardRequest(
                round=common_pb2.RoundRef(tournament_id=q.tournament, round_number=q.round),
                metric=q.metric,
                page_size=q.page_size,
                page_token=q.page_token,
            )
            return ("api-board", q), lambda: self._present(present.board, leaderboard.board(request))
        if path == "/api/v1/reputation":
            r = params.reputation_query(query, gw.tournament, gw.page_size)
            rep = pb.GetReputationRequest(
                tournament_id=r.tournament,
                metric=r.metric,
                window_rounds=r.window,
                page_size=r.page_size,
                page_token=r.page_token,
            )
            return ("api-reputation", r), lambda: self._present(present.reputation, leaderboard.reputation(rep))
        if path == "/api/v1/rounds":
            s = params.rounds_query(query, gw.tournament, gw.page_size)
            listing = pb.ListRoundsRequest(tournament_id=s.tournament, page_size=s.page_size, page_token=s.page_token)
            return ("api-rounds", s), lambda: self._present(present.rounds, leaderboard.rounds(listing))
        if path.startswith("/api/v1/models/"):
            model_id = params.model_id(unquote(path.removeprefix("/api/v1/models/")))
            return ("api-model", model_id), lambda: self._present(present.profile, leaderboard.profile(model_id))
        raise HttpError(404, "NOT_FOUND", f"no API route {path[:100]!r}; {ROUTES}")

    @staticmethod
    async def _present(shape: Callable[[Any], Any], call: Awaitable[Any]) -> Any:
        return shape(await call)
