"""No participant can starve the others: a greedy participant holding upload streams open.

The attack of issue 16: one participant makes as many keys as it can (36 asked, the key limit
grants some and refuses the rest) and opens 1,000 upload streams that send a header and then
nothing. It gets its per-participant share of streams and every other one is refused at once with
RESOURCE_EXHAUSTED; meanwhile another participant's uploads all succeed with p99 under 2 s and the
health service answers SERVING throughout. The server runs in its own process, on loopback.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as pb_grpc
from tests.integration.faults.serverproc import ServerProcess
from tests.support import bearer, upload_stream

KEYS_ASKED = 36
STREAMS = 1000
MAX_KEYS = 10
PER_PARTICIPANT = 4
SPEC = pb.GeneratedDatasetSpec(
    seed=5, n_train=1000, n_validation=4000, n_live=2000, n_features=8, n_training_eras=4, n_tournament_eras=6
)


@pytest_asyncio.fixture(scope="module")
async def server(database_url, tmp_path_factory) -> AsyncIterator[ServerProcess]:
    proc = ServerProcess(
        database_url,
        tmp_path_factory.mktemp("isolation") / "submissions.log",
        env={
            "CROWDQUANT_MAX_KEYS_PER_PARTICIPANT": str(MAX_KEYS),
            "CROWDQUANT_UPLOAD_STREAMS_PER_PARTICIPANT": str(PER_PARTICIPANT),
            "CROWDQUANT_UPLOAD_IDLE_SECONDS": "600",
        },
    )
    await proc.start()
    yield proc
    proc.stop()


async def greedy_keys(
    server: ServerProcess, participant_id: str, first_key: str
) -> tuple[list[str], list[grpc.StatusCode]]:
    """Ask for KEYS_ASKED - 1 more keys with the participant's own key: (keys granted, refusal codes)."""
    keys, refusals = [first_key], []
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = id_grpc.IdentityServiceStub(channel)
        for n in range(KEYS_ASKED - 1):
            try:
                request = id_pb.CreateApiKeyRequest(
                    request_id=f"greedy-key-{n}", participant_id=participant_id, role=common_pb2.ROLE_PARTICIPANT
                )
                resp = await stub.CreateApiKey(request, metadata=bearer(first_key))
                keys.append(resp.secret)
            except grpc.aio.AioRpcError as exc:
                refusals.append(exc.code())
                assert "limit" in exc.details()
    return keys, refusals


async def test_a_participant_holding_1000_streams_starves_only_itself(server):
    greedy_id, greedy = await server.participant("greedy")
    _, honest = await server.participant("honest")
    ids = await server.open_round("isolation", SPEC)
    greedy_model = await server.model(greedy, "isolation", "greedy-1")
    honest_models = [await server.model(honest, "isolation", f"honest-{n}") for n in range(2)]

    keys, key_refusals = await greedy_keys(server, greedy_id, greedy)
    assert len(keys) == MAX_KEYS
    assert key_refusals == [grpc.StatusCode.RESOURCE_EXHAUSTED] * (KEYS_ASKED - MAX_KEYS)

    release = asyncio.Event()
    all_refused = asyncio.Event()
    refusals: list[grpc.StatusCode] = []
    channels = [grpc.aio.insecure_channel(server.address) for _ in keys]
    ref = common_pb2.RoundRef(tournament_id="isolation", round_number=1)

    async def idle_stream(n: int) -> grpc.StatusCode:
        async def requests():
            yield pb.UploadPredictionsRequest(
                header=pb.UploadHeader(request_id=f"idle-{n}", model_id=greedy_model, round=ref)
            )
            await release.wait()

        stub = pb_grpc.SubmissionsServiceStub(channels[n % len(keys)])
        try:
            await stub.UploadPredictions(requests(), metadata=bearer(keys[n % len(keys)]))
        except grpc.aio.AioRpcError as exc:
            if not release.is_set():
                refusals.append(exc.code())
                if len(refusals) == STREAMS - PER_PARTICIPANT:
                    all_refused.set()
            return exc.code()
        return grpc.StatusCode.OK

    attack = [asyncio.create_task(idle_stream(n)) for n in range(STREAMS)]
    health_codes: list[str] = []
    latencies: list[float] = []
    try:
        # every stream past the participant's share is refused at once; the share stays open
        await asyncio.wait_for(all_refused.wait(), timeout=120)
        assert set(refusals) == {grpc.StatusCode.RESOURCE_EXHAUSTED}, Counter(refusals)

        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.SubmissionsServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            stop_probe = asyncio.Event()

            async def probe() -> None:
                while not stop_probe.is_set():
                    resp = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
                    health_codes.append(health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))
                    await asyncio.sleep(0.1)

            prober = asyncio.create_task(probe())
            rng = np.random.default_rng(2)
            for n in range(20):
                header = pb.UploadHeader(request_id=f"honest-{n}", model_id=honest_models[n % 2], round=ref)
                started = time.perf_counter()
                resp = await stub.UploadPredictions(
                    upload_stream(header, ids, rng.uniform(0.3, 0.7, len(ids))), metadata=bearer(honest), timeout=30
                )
                latencies.append(time.perf_counter() - started)
                assert resp.receipt.signature
            stop_probe.set()
            await prober
        assert sum(not t.done() for t in attack) == PER_PARTICIPANT  # the greedy share was held throughout
    finally:
        release.set()
        for task in attack:
            task.cancel()
        await asyncio.gather(*attack, return_exceptions=True)
        for channel in channels:
            await channel.close()
    p99 = float(np.percentile(latencies, 99))
    print(f"honest uploads: {len(latencies)}, p99 {p99:.3f} s; health checks {len(health_codes)}")
    assert p99 < 2.0
    assert health_codes and set(health_codes) == {"SERVING"}
