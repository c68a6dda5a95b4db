"""Service runtime over real gRPC: health, reflection, database outages, errors, logs."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support import TcpProxy, start_services, stop_services

EXPECTED = {
    "submissions": {"crowdquant.submissions.v1.IdentityService"},
    "scoring": {"crowdquant.scoring.v1.ScoringService"},
    "leaderboard": {"crowdquant.leaderboard.v1.LeaderboardService"},
    "payouts": {"crowdquant.payouts.v1.PayoutsService", "crowdquant.payouts.v1.LedgerAuditService"},
}


async def health_status(addr: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(addr) as channel:
        resp = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=3
        )
        return resp.status


async def test_every_service_is_serving(services):
    for name, svc in services.items():
        assert await health_status(svc.address) == health_pb2.HealthCheckResponse.SERVING, name
        for full_name in EXPECTED[name]:
            assert await health_status(svc.address, full_name) == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_every_service(services):
    for name, svc in services.items():
        async with grpc.aio.insecure_channel(svc.address) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)

            async def requests():
                yield reflection_pb2.ServerReflectionRequest(list_services="")

            listed = set()
            async for resp in stub.ServerReflectionInfo(requests()):
                listed |= {s.name for s in resp.list_services_response.service}
            assert EXPECTED[name] | {"grpc.health.v1.Health"} <= listed, name

            async def describe(name=name):
                for full in EXPECTED[name]:
                    yield reflection_pb2.ServerReflectionRequest(file_containing_symbol=full)

            async for resp in stub.ServerReflectionInfo(describe()):
                assert resp.file_descriptor_response.file_descriptor_proto, name


async def wait_for(addr: str, want: int, tries: int = 200) -> None:
    for _ in range(tries):
        if await health_status(addr) == want:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"health never became {health_pb2.HealthCheckResponse.ServingStatus.Name(want)}")


async def test_database_outage_turns_health_not_serving_and_back(database_url, keys):
    """Start with the database unreachable, bring it up, cut it, bring it back: no restart."""
    proxy = TcpProxy(database_url)
    await proxy.start()
    await proxy.cut()
    running = await start_services(proxy.url(), keys.services, names=["submissions"])
    addr = running["submissions"].address
    try:
        assert await health_status(addr) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await health_status(addr, "liveness") == health_pb2.HealthCheckResponse.SERVING
        await proxy.start()
        await wait_for(addr, health_pb2.HealthCheckResponse.SERVING)
        await proxy.cut()
        await wait_for(addr, health_pb2.HealthCheckResponse.NOT_SERVING)
        from crowdquant.submissions.v1 import identity_service_pb2 as pb
        from crowdquant.submissions.v1 import identity_service_pb2_grpc as pb_grpc
        from tests.integration.conftest import md

        async with grpc.aio.insecure_channel(addr) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await pb_grpc.IdentityServiceStub(channel).ListParticipants(
                    pb.ListParticipantsRequest(), metadata=md(keys.operator), timeout=20
                )
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        await proxy.start()
        await wait_for(addr, health_pb2.HealthCheckResponse.SERVING)
    finally:
        await stop_services(running)
        await proxy.cut()
