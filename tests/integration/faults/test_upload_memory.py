"""Bounded memory on the upload path: refusing a hostile upload costs the server at most 50 MB.

Each case runs against the submissions service in its own process on a round of the 2016 size
(36,072 tournament rows). Its peak RSS (VmHWM) is reset before each upload and read after the
refusal; the growth must stay under 50 MB, whatever the sender chose to send. These are memory
thresholds, not timings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest
import pytest_asyncio

from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as pb_grpc
from tests.integration.faults.serverproc import ServerProcess, memory_kb, reset_peak
from tests.support import bearer, upload_stream

LIMIT_MB = 50
IDLE_SECONDS = 2
FIGURES: dict[str, float] = {}


@pytest_asyncio.fixture(scope="module")
async def server(database_url, tmp_path_factory) -> AsyncIterator[ServerProcess]:
    proc = ServerProcess(
        database_url,
        tmp_path_factory.mktemp("memory") / "submissions.log",
        env={"CROWDQUANT_UPLOAD_IDLE_SECONDS": str(IDLE_SECONDS)},
    )
    await proc.start()
    yield proc
    proc.stop()
    print("peak RSS growth while refusing (MB):", {k: round(v, 1) for k, v in FIGURES.items()})


@pytest_asyncio.fixture(scope="module")
async def setup(server):
    _, key = await server.participant("mallory")
    ids = await server.open_round("memory")
    model = await server.model(key, "memory", "mallory-1")
    header = pb.UploadHeader(
        request_id="warm", model_id=model, round=common_pb2.RoundRef(tournament_id="memory", round_number=1)
    )
    values = np.random.default_rng(0).uniform(0.3, 0.7, len(ids))
    async with grpc.aio.insecure_channel(server.address) as channel:  # an honest upload warms the round's view
        resp = await pb_grpc.SubmissionsServiceStub(channel).UploadPredictions(
            upload_stream(header, ids, values), metadata=bearer(key)
        )
        assert resp.submission.version == 1
    return key, model, ids


async def refused(server: ServerProcess, key: str, requests, name: str) -> grpc.aio.AioRpcError:
    """Send one upload, expect a refusal, and check the server's peak RSS grew <= LIMIT_MB."""
    before = reset_peak(server.pid)
    async with grpc.aio.insecure_channel(
        server.address, options=[("grpc.max_send_message_length", 256 << 20)]
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.SubmissionsServiceStub(channel).UploadPredictions(requests, metadata=bearer(key), timeout=120)
    grown = (memory_kb(server.pid)["VmHWM"] - before) / 1024
    FIGURES[name] = grown
    assert grown <= LIMIT_MB, f"{name}: peak RSS grew {grown:.1f} MB refusing it"
    return info.value


def own_write_failed(err: grpc.aio.AioRpcError) -> bool:
    """The sender's own write failed because the server had already closed the stream.

    A sender that keeps writing races the server's answer: gRPC then reports the failed write
    (INTERNAL, "from Core") instead of the server's status. The stream was still refused; the
    memory bound is what these tests measure.
    """
    return err.code() == grpc.StatusCode.INTERNAL and "from Core" in (err.details() or "")


def header_for(model: str, request_id: str) -> pb.UploadHeader:
    return pb.UploadHeader(
        request_id=request_id, model_id=model, round=common_pb2.RoundRef(tournament_id="memory", round_number=1)
    )


@pytest.mark.parametrize("length", [8_000, 100_000])
async def test_a_long_id_is_refused_when_it_arrives(server, setup, length):
    key, model, ids = setup
    bad = list(ids)
    bad[1234] = "x" * length
    values = np.full(len(bad), 0.5)
    err = await refused(
        server, key, upload_stream(header_for(model, f"long-{length}"), bad, values), f"{length:,}-char id"
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "longer than every id of this round" in err.details() and "upload row 1234" in err.details()


async def test_60_mb_chunks_are_refused_before_they_are_read(server, setup):
    key, model, _ = setup

    async def chunks():
        import asyncio

        yield pb.UploadPredictionsRequest(header=header_for(model, "big-chunks"))
        yield pb.UploadPredictionsRequest(chunk=pb.PredictionsChunk(ids=b"a" * (60 << 20), values=b""))
        # the sender holds the stream open for more (were it still writing when the server answered, its
        # own next write would fail first and hide the server's status)
        await asyncio.sleep(3600)
        yield pb.UploadPredictionsRequest(chunk=pb.PredictionsChunk(ids=b"a" * (60 << 20), values=b""))

    err = await refused(server, key, chunks(), "a chunk of 60 MB")
    # gRPC refuses the oversize message unread; on a busy machine the sender may still be encoding it
    # when the idle timeout cuts the stream: either way nothing of it was read
    assert err.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED), err.details()


async def test_ten_times_the_rows_are_refused_past_the_cap(server, setup):
    key, model, ids = setup
    many = [f"r{i}" for i in range(10 * len(ids))]
    err = await refused(
        server, key, upload_stream(header_for(model, "ten-times"), many, np.full(len(many), 0.5)), "ten times the rows"
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "rows" in err.details() and "the round has 36,072" in err.details()


async def test_a_stream_that_never_ends_is_cut(server, setup):
    key, model, ids = setup
    part = "\n".join(ids[:8192]).encode()
    values = np.full(8192, 0.5, dtype="<f4").tobytes()

    async def endless():
        yield pb.UploadPredictionsRequest(header=header_for(model, "endless"))
        while True:
            yield pb.UploadPredictionsRequest(chunk=pb.PredictionsChunk(ids=part, values=values))

    err = await refused(server, key, endless(), "endless chunks")
    if not own_write_failed(err):
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "passed" in err.details()


async def test_a_silent_stream_is_cut_after_the_idle_timeout(server, setup):
    key, model, _ = setup
    import asyncio

    async def silent():
        yield pb.UploadPredictionsRequest(header=header_for(model, "silent"))
        await asyncio.sleep(3600)
        yield pb.UploadPredictionsRequest()

    err = await refused(server, key, silent(), "a silent stream")
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert f"sent nothing for {IDLE_SECONDS} s" in err.details()


async def test_non_utf8_ids_are_invalid_argument(server, setup):
    key, model, _ = setup

    async def garbled():
        yield pb.UploadPredictionsRequest(header=header_for(model, "garbled"))
        yield pb.UploadPredictionsRequest(chunk=pb.PredictionsChunk(ids=b"n0\n\xff\xfe", values=b"\0" * 8))

    err = await refused(server, key, garbled(), "non-UTF-8 ids")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not UTF-8" in err.details()


async def test_an_upload_without_request_id_is_refused_at_its_header(server, setup):
    key, model, ids = setup
    err = await refused(server, key, upload_stream(header_for(model, ""), ids, np.full(len(ids), 0.5)), "no request id")
    if not own_write_failed(err):
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "request_id is required" in err.details()
