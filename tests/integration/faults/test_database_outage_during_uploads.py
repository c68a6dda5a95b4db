"""Postgres goes away during uploads: clients see UNAVAILABLE, the client library's retries succeed
once it is back, nothing partial is stored, and health goes NOT_SERVING and back."""

from __future__ import annotations

import asyncio

import numpy as np
from grpc_health.v1 import health_pb2

from crowdquant.client import Client
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from tests.integration.conftest import md
from tests.integration.foundation.test_runtime import health_status
from tests.integration.submissions.conftest import blt_address
from tests.support import TcpProxy, start_services, stop_services, table_checksums

SPEC = pb.GeneratedDatasetSpec(
    seed=21, n_train=500, n_validation=1500, n_live=500, n_features=5, n_training_eras=5, n_tournament_eras=4
)


async def test_uploads_survive_a_database_outage(database_url, keys, subs):
    await subs.CreateTournament(
        pb.CreateTournamentRequest(request_id="t-out", tournament_id="outage", target_kind=1),
        metadata=md(keys.operator),
    )
    opened = (
        await subs.OpenRound(
            pb.OpenRoundRequest(request_id="o-out", tournament_id="outage", generated=SPEC), metadata=md(keys.operator)
        )
    ).round
    proxy = TcpProxy(database_url)
    await proxy.start()
    running = await start_services(proxy.url(), keys.services, names=["submissions"])
    addr = running["submissions"].address
    client = Client(addr, keys.participant, retries=8, timeout=20)
    try:
        model = await asyncio.to_thread(client.create_model, "outage", "steady", blt_address(11))
        data = await asyncio.to_thread(client.fetch_data, "outage")
        ids = data.dataset.ids[data.dataset.split != 1]
        rng = np.random.default_rng(0)
        uploads = [rng.uniform(0.3, 0.7, len(ids)) for _ in range(6)]

        async def upload_all() -> list:
            out = []
            for values in uploads:
                out.append(await asyncio.to_thread(client.submit, "outage", (ids, values), model=model.model_id))
            return out

        task = asyncio.create_task(upload_all())
        await asyncio.sleep(0.3)
        await proxy.cut()
        seen_not_serving = False
        for _ in range(100):
            if await health_status(addr) == health_pb2.HealthCheckResponse.NOT_SERVING:
                seen_not_serving = True
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        await proxy.start()
        receipts = await asyncio.wait_for(task, timeout=120)
        assert seen_not_serving
        for _ in range(100):
            if await health_status(addr) == health_pb2.HealthCheckResponse.SERVING:
                break
            await asyncio.sleep(0.05)
        assert await health_status(addr) == health_pb2.HealthCheckResponse.SERVING
        # every upload stored exactly once, versions 1..6, each matching its receipt
        assert [r.version for r in receipts] == list(range(1, 7))
        listed = await subs.ListSubmissions(
            pb.ListSubmissionsRequest(round=opened.round, model_id=model.model_id), metadata=md(keys.operator)
        )
        assert [(s.version, s.content_sha256) for s in listed.submissions] == [
            (r.version, r.content_sha256) for r in receipts
        ]
        sums = await table_checksums(database_url, ["submissions"])
        assert sums['"submissions"."submissions"'][0] == 6
    finally:
        client.close()
        await stop_services(running)
        await proxy.cut()
