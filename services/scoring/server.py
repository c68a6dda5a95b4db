"""The scoring service: metrics, the meta model and each model's contribution."""

from __future__ import annotations

from pathlib import Path

import grpc

from crowdquant.scoring.v1 import scoring_service_pb2, scoring_service_pb2_grpc
from services.scoring.api.access import SCORING, SCORING_SCOPES
from services.scoring.api.convert import encode
from services.scoring.api.scoring import ScoringServicer
from services.scoring.peers import Peers
from services.scoring.usecases.ladder import PublicBoard
from services.scoring.usecases.reads import Results
from services.scoring.usecases.runs import Runner
from shared.rpc import remote_auth
from shared.rpc.server import ServiceContext, ServiceSpec

SCHEMA = "scoring"
SERVICE = scoring_service_pb2.DESCRIPTOR.services_by_name["ScoringService"].full_name


async def register(server: grpc.aio.Server, ctx: ServiceContext):
    peers = Peers(ctx.settings)
    runner = Runner(ctx.database, peers, encode)
    servicer = ScoringServicer(ctx.database, runner, PublicBoard(ctx.database, peers), Results(ctx.database))
    scoring_service_pb2_grpc.add_ScoringServiceServicer_to_server(servicer, server)
    ctx.on_ready.append(runner.fail_orphans)
    ctx.on_stop.append(peers.close)
    ctx.policy.add(SERVICE, SCORING, SCORING_SCOPES)
    return [SERVICE], remote_auth.attach(ctx)


SPEC = ServiceSpec(
    name="scoring", schema=SCHEMA, migrations=Path(__file__).parent / "store" / "migrations", register=register
)
