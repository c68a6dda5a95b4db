"""The leaderboard service: published rounds, rankings, reputation and model profiles."""

from __future__ import annotations

from pathlib import Path

import grpc

from crowdquant.leaderboard.v1 import leaderboard_service_pb2, leaderboard_service_pb2_grpc
from services.leaderboard.access import LEADERBOARD
from shared.rpc import remote_auth
from shared.rpc.server import ServiceContext, ServiceSpec

SCHEMA = "leaderboard"
SERVICE = leaderboard_service_pb2.DESCRIPTOR.services_by_name["LeaderboardService"].full_name


async def register(server: grpc.aio.Server, ctx: ServiceContext):
    leaderboard_service_pb2_grpc.add_LeaderboardServiceServicer_to_server(
        leaderboard_service_pb2_grpc.LeaderboardServiceServicer(), server
    )
    ctx.policy.add(SERVICE, LEADERBOARD)
    return [SERVICE], remote_auth.attach(ctx)


SPEC = ServiceSpec(name="leaderboard", schema=SCHEMA, migrations=Path(__file__).parent / "migrations",
                   register=register)
