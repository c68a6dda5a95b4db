"""The outermost layer of every request: per-client rate limit, metrics, and safety headers.

Written as plain ASGI (no per-request objects) because it runs on every request, including the
cached hot path. /healthz and /metrics are never rate limited, so probes and scrapers always work.
"""

from __future__ import annotations

import time
from typing import Any

from services.gateway.answers import CORS_ERRORS, SAFETY, error_body
from services.gateway.limits import client_address, retry_after
from services.gateway.state import Gateway
from services.gateway.upstream import HttpError

UNLIMITED = ("/healthz", "/metrics")
REFERRER = (b"referrer-policy", b"no-referrer")
EXACT = {"/", "/reputation", "/healthz", "/metrics", "/api/v1/rounds", "/api/v1/leaderboard", "/api/v1/reputation"}


def route_label(path: str) -> str:
    """A bounded label for metrics: the route template, never the raw path."""
    if path in EXACT:
        return path
    for prefix, label in (
        ("/api/v1/models/", "/api/v1/models/{model_id}"),
        ("/models/", "/models/{model_id}"),
        ("/static/", "/static"),
        ("/api/", "/api/other"),
    ):
        if path.startswith(prefix):
            return label
    return "other"


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class Edge:
    """Wraps the pages application; paths under /api/ go to the plain-ASGI ``api`` instead."""

    def __init__(self, app: Any, gateway: Gateway, api: Any) -> None:
        self.app = app
        self.api = api
        self.gw = gateway

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        route = route_label(path)
        status = [500]
        metrics = self.gw.metrics
        try:
            if route not in UNLIMITED:
                peer = scope["client"][0] if scope.get("client") else ""
                client = client_address(peer, _header(scope, b"x-forwarded-for"), self.gw.trusted)
                wait = self.gw.limiter.take(client)
                if wait > 0:
                    status[0] = 429
                    metrics.rate_limited.inc()
                    await self._too_many(path, retry_after(wait), send)
                    return

            async def send_with_headers(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                    message["headers"] = [*message.get("headers", ()), *SAFETY, REFERRER]
                await send(message)

            if path.startswith("/api/"):  # JSON answers too: nosniff on every response
                status[0] = await self.api.handle(scope, send_with_headers)
                return

            await self.app(scope, receive, send_with_headers)
        finally:
            metrics.requests.add((("route", route), ("status", str(status[0]))))
            metrics.duration.record(time.perf_counter() - started, (("route", route),))

    @staticmethod
    async def _too_many(path: str, seconds: int, send: Any) -> None:
        message = f"too many requests from your address; retry in {seconds} s"
        if path.startswith("/api/"):
            body = error_body(HttpError(429, "RESOURCE_EXHAUSTED", message)).content
            headers = [
                (b"content-type", b"application/json"),
                *((k.encode(), v.encode()) for k, v in CORS_ERRORS.items()),
            ]
        else:
            body = f"<!doctype html><title>Too many requests</title><p>{message}.</p>".encode()
            headers = [(b"content-type", b"text/html; charset=utf-8")]
        headers += [
            (b"retry-after", str(seconds).encode()),
            (b"cache-control", b"no-store"),
            (b"content-length", str(len(body)).encode()),
            *SAFETY,
            REFERRER,
        ]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
