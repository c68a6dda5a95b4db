"""Integration fixtures: the four services as real gRPC servers on loopback, and keys for each role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest_asyncio

from crowdquant.cli.bootstrap import create_key, create_service_keys
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from shared.auth import Role
from shared.config import CommonSettings
from shared.rpc.server import RunningService
from tests.support import start_services, stop_services


@dataclass
class Keys:
    operator: str
    auditor: str
    services: dict[str, str]  # each service's own key, by service name
    participant: str
    participant_id: str
    other: str
    other_id: str


def md(key: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),) if key else ()


@pytest_asyncio.fixture(scope="module")
async def services(database_url: str) -> AsyncIterator[dict[str, RunningService]]:
    service_keys = await create_service_keys(CommonSettings(), "tests", url=database_url)
    # the default per-key upload rate would throttle the tests' hundreds of uploads
    running = await start_services(
        database_url, service_keys, submissions={"uploads_per_minute": 100_000, "upload_burst": 10_000}
    )
    for svc in running.values():
        svc.ctx.extras["service_keys"] = service_keys
    yield running
    await stop_services(running)


@pytest_asyncio.fixture(scope="module")
async def keys(services: dict[str, RunningService], database_url: str) -> Keys:
    settings = CommonSettings()
    operator = await create_key(settings, Role.OPERATOR, "", "tests", [], url=database_url)
    auditor = await create_key(settings, Role.AUDITOR, "", "tests", [], url=database_url)
    async with grpc.aio.insecure_channel(services["submissions"].address) as channel:
        stub = id_grpc.IdentityServiceStub(channel)
        ids = []
        for name in ("alice", "bob"):
            resp = await stub.CreateParticipant(
                id_pb.CreateParticipantRequest(request_id=f"fixture-{name}", display_name=name), metadata=md(operator)
            )
            ids.append(resp.participant.participant_id)
    participant = await create_key(settings, Role.PARTICIPANT, ids[0], "tests", [], url=database_url)
    other = await create_key(settings, Role.PARTICIPANT, ids[1], "tests", [], url=database_url)
    return Keys(
        operator=operator,
        auditor=auditor,
        services=services["submissions"].ctx.extras["service_keys"],
        participant=participant,
        participant_id=ids[0],
        other=other,
        other_id=ids[1],
    )


@pytest_asyncio.fixture(scope="module")
async def subs(services):
    """A SubmissionsService stub on the module's servers."""
    from crowdquant.submissions.v1 import submissions_service_pb2_grpc as pb_grpc

    async with grpc.aio.insecure_channel(services["submissions"].address) as channel:
        yield pb_grpc.SubmissionsServiceStub(channel)
