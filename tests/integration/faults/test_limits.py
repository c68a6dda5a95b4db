"""Limits: per-key upload rate and message size give RESOURCE_EXHAUSTED with a clear message."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as pb_grpc
from shared.testing import start_services, stop_services
from tests.integration.conftest import md
from tests.integration.submissions.conftest import upload_requests


async def test_upload_rate_limit_per_key(database_url, keys):
    running = await start_services(database_url, keys.service, names=["submissions"],
                                   submissions={"uploads_per_minute": 0.001, "upload_burst": 2,
                                                "notify_scoring": False})
    try:
        async with grpc.aio.insecure_channel(running["submissions"].address) as channel:
            stub = pb_grpc.SubmissionsServiceStub(channel)
            header = pb.UploadHeader(request_id="rl", model_id="m_nothing")
            codes = []
            for _ in range(3):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.UploadPredictions(upload_requests(header, ["a"], np.asarray([0.5])),
                                                 metadata=md(keys.participant))
                codes.append(info.value.code())
            assert codes[:2] != [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2
            assert codes[2] == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "too many uploads" in info.value.details() and "retry in" in info.value.details()
            # another key is not limited by this one's use
            with pytest.raises(grpc.aio.AioRpcError) as other:
                await stub.UploadPredictions(upload_requests(header, ["a"], np.asarray([0.5])), metadata=md(keys.other))
            assert other.value.code() != grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        await stop_services(running)


async def test_oversize_message_is_resource_exhausted(database_url, keys):
    running = await start_services(database_url, keys.service, names=["submissions"],
                                   submissions={"max_message_bytes": 1024 * 1024, "notify_scoring": False})
    try:
        async with grpc.aio.insecure_channel(running["submissions"].address,
                                             options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
            stub = pb_grpc.SubmissionsServiceStub(channel)

            async def huge():
                yield pb.UploadPredictionsRequest(header=pb.UploadHeader(request_id="big", model_id="m_x"))
                yield pb.UploadPredictionsRequest(chunk=pb.PredictionsChunk(ids=b"x" * (2 << 20), values=b""))

            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.UploadPredictions(huge(), metadata=md(keys.participant))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "larger than max" in info.value.details()
    finally:
        await stop_services(running)
