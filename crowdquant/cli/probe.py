"""gRPC health probe (grpc.health.v1), used by ``crowdquant health`` and the demo."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def check_health(addr: str, service: str = "", timeout: float = 3.0, root_certs: bytes | None = None) -> str:
    if root_certs:
        credentials = grpc.ssl_channel_credentials(root_certs)
        channel = grpc.aio.secure_channel(addr, credentials)
    else:
        channel = grpc.aio.insecure_channel(addr)
    async with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
