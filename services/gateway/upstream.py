"""The gateway's only peer: the leaderboard, over gRPC, anonymously, with a short deadline.

A failed call becomes an :class:`HttpError` with the status a web client understands: 400 for a
bad argument, 404 for an unknown round or model, 503 (with Retry-After) when the leaderboard is
down or slow, 502 for anything else (a generic message; the detail goes to the log only).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as pb
from crowdquant.leaderboard.v1 import leaderboard_service_pb2_grpc as pb_grpc
from services.gateway.metrics import GatewayMetrics
from shared.errors import DomainError, InvalidArgument, NotFound, ResourceExhausted, Unavailable
from shared.logging import get_logger
from shared.rpc.client import call_with_retry, open_channel

#: The services the gateway calls (tests/unit/deploy/test_dependencies.py checks the call graph).
CALLS = ("leaderboard",)

log = get_logger("crowdquant.gateway.upstream")


class HttpError(Exception):
    """An error answer: HTTP status, a stable code name and a message for the reader."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


def http_error(exc: DomainError) -> HttpError:
    if isinstance(exc, InvalidArgument):
        return HttpError(400, "INVALID_ARGUMENT", exc.message)
    if isinstance(exc, NotFound):
        return HttpError(404, "NOT_FOUND", exc.message)
    if isinstance(exc, ResourceExhausted):
        return HttpError(429, "RESOURCE_EXHAUSTED", "the leaderboard is busy; retry shortly", retry_after=1)
    if isinstance(exc, Unavailable):
        return HttpError(503, "UNAVAILABLE", "the leaderboard is unavailable; retry shortly", retry_after=2)
    log.warning("leaderboard call failed", error=f"{type(exc).__name__}: {exc.message}"[:300])
    return HttpError(502, "BAD_GATEWAY", "the leaderboard gave an unexpected answer")


class Leaderboard:
    """Typed calls to LeaderboardService; the channel opens on first use (inside the event loop),
    over TLS when ``ca_file`` (``CROWDQUANT_TLS_CA_FILE``, as for the services) is set."""

    def __init__(self, address: str, deadline: float, metrics: GatewayMetrics, ca_file: Path | None = None) -> None:
        self.address = address
        self.deadline = deadline
        self.metrics = metrics
        self.ca_file = ca_file
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.LeaderboardServiceStub | None = None

    @property
    def stub(self) -> pb_grpc.LeaderboardServiceStub:
        if self._stub is None:
            credentials = grpc.ssl_channel_credentials(self.ca_file.read_bytes()) if self.ca_file else None
            self._channel = open_channel(self.address, credentials)
            self._stub = pb_grpc.LeaderboardServiceStub(self._channel)
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    async def _call(self, rpc: str, fn: Callable[..., Awaitable[Any]], request: Any) -> Any:
        try:
            response = await call_with_retry(
                fn, request, api_key=None, deadline=self.deadline, attempts=2, base_delay=0.05
            )
        except DomainError as exc:
            self.metrics.upstream.inc(rpc=rpc, code=type(exc).__name__)
            raise http_error(exc) from exc
        self.metrics.upstream.inc(rpc=rpc, code="OK")
        return response

    async def board(self, request: pb.GetRoundLeaderboardRequest) -> pb.GetRoundLeaderboardResponse:
        return await self._call("GetRoundLeaderboard", self.stub.GetRoundLeaderboard, request)

    async def reputation(self, request: pb.GetReputationRequest) -> pb.GetReputationResponse:
        return await self._call("GetReputation", self.stub.GetReputation, request)

    async def profile(self, model_id: str) -> pb.GetModelProfileResponse:
        return await self._call(
            "GetModelProfile", self.stub.GetModelProfile, pb.GetModelProfileRequest(model_id=model_id)
        )

    async def rounds(self, request: pb.ListRoundsRequest) -> pb.ListRoundsResponse:
        return await self._call("ListRounds", self.stub.ListRounds, request)
