"""The gateway's ASGI application: routes, static assets, health and metrics, and the edge layer.

``create_app`` builds everything from settings, so tests and the benchmark run the very app that
``crowdquant serve gateway`` serves.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from services.gateway import pages
from services.gateway.answers import error_response
from services.gateway.api import Api
from services.gateway.edge import Edge
from services.gateway.settings import GatewaySettings
from services.gateway.state import Gateway
from services.gateway.upstream import HttpError

STATIC = Path(__file__).parent / "static"


class Assets(StaticFiles):
    """Shipped CSS and JS; links carry a version query, so browsers may keep them for an hour."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["cache-control"] = "public, max-age=3600"
        return response


async def healthz(request: Request) -> Response:
    """Liveness of this process only: no peer is asked, so a leaderboard outage never restarts it."""
    return JSONResponse({"status": "ok"}, headers={"cache-control": "no-store"})


async def metrics(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return PlainTextResponse(
        gw.metrics.render(),
        media_type="text/plain; version=0.0.4; charset=utf-8",
        headers={"cache-control": "no-store"},
    )


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return await pages.not_found(request)
    if status == 405:
        return error_response(request, HttpError(405, "METHOD_NOT_ALLOWED", "this site is read-only: use GET"))
    return error_response(request, HttpError(status, "ERROR", "the request could not be served"))


def create_app(settings: GatewaySettings, clock: Callable[[], float] = time.monotonic) -> Edge:
    """The whole gateway as one ASGI callable (the edge layer around the API and the pages)."""
    gateway = Gateway.build(settings, clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await gateway.leaderboard.close()

    routes = [
        *pages.ROUTES,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Mount("/static", Assets(directory=STATIC), name="static"),
    ]
    site = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: http_error, 405: http_error})
    site.state.gateway = gateway
    return Edge(site, gateway, Api(gateway))
