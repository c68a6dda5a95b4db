"""Limits: per-key upload rate and message size give RESOURCE_EXHAUSTED with a clear message."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as pb_grpc
from tests.integration.conftest import md
from tests.integration.submissions.conftest import upload_requests
from tests.support import start_services, stop_services


async def test_upload_rate_limit_per_key(database_url, keys):
    running = await start_services(
        database_url,
        keys.services,
        names=["submissions"],
        submissions={"uploads_per_minute": 0.001, "upload_burst": 2},
    )
    try:
        async with grpc.aio.insecure_channel(running["submissions"].address) as channel:
            stub = pb_grpc.SubmissionsServiceStub(channel)
            header = pb.UploadHeader(request_id="rl", model_id="m_nothing")
            codes = []
            for _ in range(3):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await stub.UploadPredictions(
                        upload_requests(header, ["a"], np.asarray([0.5])), metadata=md(keys.participant)
                    )
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
    running = await start_services(
        database_url,
        keys.services,
        names=["submissions"],
        submissions={"max_message_bytes": 1024 * 1024},
    )
    try:
        async with grpc.aio.insecure_channel(
            running["submissions"].address, options=[("grpc.max_send_message_length", 64 << 20)]
        ) as channel:
            stub = pb_grpc.SubmissionsServiceStub(channel)

            async def huge():  # refused by gRPC itself, before the service reads it
                yield pb.UploadPredictionsRequest(chunk=pb.PredictionsChunk(ids=b"x" * (2 << 20), values=b""))

            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.UploadPredictions(huge(), metadata=md(keys.participant))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "larger than max" in info.value.details()
    finally:
        await stop_services(running)


async def test_client_library_waits_as_the_rate_limit_says(database_url, keys, subs):
    """The participant client honours the server's retry_after_seconds on UPLOAD_RATE_LIMITED: a burst
    of uploads past the per-key limit is spread out instead of failing, and each is stored once."""
    import asyncio

    from crowdquant.client import Client
    from tests.integration.faults.test_database_outage_during_uploads import SPEC
    from tests.integration.submissions.conftest import blt_address

    await subs.CreateTournament(
        pb.CreateTournamentRequest(request_id="t-rl", tournament_id="ratelimited", target_kind=1),
        metadata=md(keys.operator),
    )
    await subs.OpenRound(
        pb.OpenRoundRequest(request_id="o-rl", tournament_id="ratelimited", generated=SPEC), metadata=md(keys.operator)
    )
    running = await start_services(
        database_url,
        keys.services,
        names=["submissions"],
        submissions={"uploads_per_minute": 120, "upload_burst": 1},
    )
    client = Client(running["submissions"].address, keys.other)
    try:
        model = await asyncio.to_thread(client.create_model, "ratelimited", "eager", blt_address(12))
        data = await asyncio.to_thread(client.fetch_data, "ratelimited")
        ids = data.dataset.ids[data.dataset.split != 1]
        rng = np.random.default_rng(1)
        receipts = []
        for _ in range(3):  # one token, then one every 0.5 s: the 2nd and 3rd are told to wait
            values = rng.uniform(0.3, 0.7, len(ids))
            receipts.append(await asyncio.to_thread(client.submit, "ratelimited", (ids, values), model=model.model_id))
        assert [r.version for r in receipts] == [1, 2, 3]
    finally:
        client.close()
        await stop_services(running)
