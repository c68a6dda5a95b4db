"""Generated bad requests against every mutating RPC of every service: the right status, a message,
never INTERNAL, and nothing written (table checksums compared around every refused call).

Messages are built from the RPC's own descriptor with hostile values: empty, huge and unicode
strings, SQL-looking ids, negative and huge numbers, NaN/inf, oversize pages. A generated request
that happens to be valid (it succeeds) is not counted as bad input, and the checksums restart
after it. Streams are also truncated and cancelled mid-way.
"""

from __future__ import annotations

import asyncio
import math

import grpc
import pytest
from google.protobuf import descriptor as pbd
from google.protobuf import message_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crowdquant.leaderboard.v1 import leaderboard_service_pb2
from crowdquant.payouts.v1 import ledger_audit_service_pb2, payouts_service_pb2
from crowdquant.scoring.v1 import scoring_service_pb2
from crowdquant.submissions.v1 import identity_service_pb2, submissions_service_pb2
from tests.integration.conftest import md
from tests.support import table_checksums

MODULES = [
    (identity_service_pb2, "IdentityService", "submissions"),
    (submissions_service_pb2, "SubmissionsService", "submissions"),
    (scoring_service_pb2, "ScoringService", "scoring"),
    (leaderboard_service_pb2, "LeaderboardService", "leaderboard"),
    (payouts_service_pb2, "PayoutsService", "payouts"),
    (ledger_audit_service_pb2, "LedgerAuditService", "payouts"),
]
SCHEMAS = ["submissions", "scoring", "leaderboard", "payouts"]
ACCEPTABLE = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.OK,
}

HOSTILE_TEXT = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.text(min_size=300, max_size=2000),
    st.sampled_from(
        [
            "'; DROP TABLE submissions.participants; --",
            "1 OR 1=1",
            "../../etc/passwd",
            "\x00",
            "🦄" * 50,
            "m_" + "0" * 12,
            "p_nobody",
            "k_000000000000." + "A" * 43,
            "demo",
            "NaN",
        ]
    ),
)
HOSTILE_INT = st.one_of(st.sampled_from([0, -1, 1, 2**31 - 1, -(2**31)]), st.integers(-(2**31), 2**31 - 1))
HOSTILE_INT64 = st.one_of(
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 21_000_000 * 10**8 + 1]), st.integers(-(2**63), 2**63 - 1)
)
HOSTILE_FLOAT = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308]), st.floats())


def mutating_methods() -> list[tuple[str, pbd.MethodDescriptor]]:
    out = []
    for module, service, host in MODULES:
        for method in module.DESCRIPTOR.services_by_name[service].methods:
            fields = method.input_type.fields_by_name
            streaming_header = method.client_streaming
            if "request_id" in fields or streaming_header:
                out.append((host, method))
    return out


METHODS = mutating_methods()


def fill(draw, message, depth: int = 0) -> None:
    for field in message.DESCRIPTOR.fields:
        if draw(st.booleans()) and depth > 0:
            continue
        if field.is_repeated:
            if field.type == field.TYPE_MESSAGE:
                for _ in range(draw(st.integers(0, 2))):
                    fill(draw, getattr(message, field.name).add(), depth + 1)
            elif field.type == field.TYPE_STRING:
                getattr(message, field.name).extend(draw(st.lists(HOSTILE_TEXT, max_size=3)))
            elif field.type == field.TYPE_ENUM:
                getattr(message, field.name).extend(draw(st.lists(st.integers(-5, 10), max_size=3)))
            continue
        if field.type == field.TYPE_MESSAGE:
            if depth < 2 and draw(st.booleans()):
                fill(draw, getattr(message, field.name), depth + 1)
        elif field.type == field.TYPE_STRING:
            setattr(message, field.name, draw(HOSTILE_TEXT))
        elif field.type == field.TYPE_BYTES:
            setattr(message, field.name, draw(st.binary(max_size=64)))
        elif field.type in (field.TYPE_INT64, field.TYPE_SINT64):
            setattr(message, field.name, draw(HOSTILE_INT64))
        elif field.type in (field.TYPE_INT32, field.TYPE_SINT32):
            setattr(message, field.name, draw(HOSTILE_INT))
        elif field.type in (field.TYPE_DOUBLE, field.TYPE_FLOAT):
            setattr(message, field.name, draw(HOSTILE_FLOAT))
        elif field.type == field.TYPE_BOOL:
            setattr(message, field.name, draw(st.booleans()))
        elif field.type == field.TYPE_ENUM:
            setattr(message, field.name, draw(st.integers(-5, 10)))


@st.composite
def bad_request(draw):
    host, method = draw(st.sampled_from(METHODS))
    request = message_factory.GetMessageClass(method.input_type)()
    fill(draw, request)
    if "request_id" in method.input_type.fields_by_name and draw(st.integers(0, 3)) == 0:
        request.request_id = ""  # a quarter of them miss the required idempotency key outright
    return host, method, request


async def send(channel, method, request, metadata) -> grpc.aio.AioRpcError | None:
    path = f"/{method.containing_service.full_name}/{method.name}"
    out = message_factory.GetMessageClass(method.output_type)
    kwargs = {"request_serializer": type(request).SerializeToString, "response_deserializer": out.FromString}
    try:
        if method.client_streaming:

            async def stream():
                yield request

            await channel.stream_unary(path, **kwargs)(stream(), metadata=metadata, timeout=30)
        elif method.server_streaming:
            async for _ in channel.unary_stream(path, **kwargs)(request, metadata=metadata, timeout=30):
                pass
        else:
            await channel.unary_unary(path, **kwargs)(request, metadata=metadata, timeout=30)
    except grpc.aio.AioRpcError as exc:
        return exc
    return None


@pytest.fixture(scope="module")
def cases():
    collected = []

    @settings(max_examples=700, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(bad_request())
    def collect(case):
        collected.append(case)

    collect()
    return collected


async def test_generated_bad_requests(services, keys, database_url, cases):
    channels = {name: grpc.aio.insecure_channel(svc.address) for name, svc in services.items()}
    refused = 0
    problems = []
    try:
        before = await table_checksums(database_url, SCHEMAS)
        for n, (host, method, request) in enumerate(cases):
            key = keys.operator if n % 3 else keys.participant
            err = await send(channels[host], method, request, md(key))
            if err is None:  # a valid request after all: not bad input; start a new window
                before = await table_checksums(database_url, SCHEMAS)
                continue
            refused += 1
            if err.code() not in ACCEPTABLE or not err.details():
                problems.append(f"{method.full_name}: {err.code().name} {err.details()!r} for {request}"[:500])
            if refused % 50 == 0:
                after = await table_checksums(database_url, SCHEMAS)
                changed = [t for t in after if after[t] != before.get(t) and "idempotency" not in t]
                assert not changed, f"refused requests changed {changed}"
        after = await table_checksums(database_url, SCHEMAS)
        assert not [t for t in after if after[t] != before.get(t) and "idempotency" not in t]
    finally:
        for channel in channels.values():
            await channel.close()
    assert not problems, "\n".join(problems[:20])
    assert refused >= 500, refused


async def test_truncated_and_cancelled_upload_streams_store_nothing(services, keys, database_url, subs):
    from crowdquant.submissions.v1 import submissions_service_pb2 as pb

    before = await table_checksums(database_url, ["submissions"])
    # truncated: a header and no chunks; chunks before a header; two headers
    bad_streams = [
        [pb.UploadPredictionsRequest(header=pb.UploadHeader(request_id="tr-1", model_id="m_x"))],
        [pb.UploadPredictionsRequest(chunk=pb.PredictionsChunk(ids=b"a", values=b"\0\0\0\0"))],
        [
            pb.UploadPredictionsRequest(header=pb.UploadHeader(request_id="tr-2")),
            pb.UploadPredictionsRequest(header=pb.UploadHeader(request_id="tr-3")),
        ],
        [pb.UploadPredictionsRequest()],
    ]
    for messages in bad_streams:

        async def stream(messages=messages):
            for m in messages:
                yield m

        with pytest.raises(grpc.aio.AioRpcError) as info:
            await subs.UploadPredictions(stream(), metadata=md(keys.participant))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()

    # cancelled mid-stream by the client, after a header the server accepted (so it waits for chunks)
    from crowdquant.common.v1 import common_pb2
    from tests.integration.submissions.conftest import SMALL, blt_address

    await subs.CreateTournament(
        pb.CreateTournamentRequest(request_id="t-cx", tournament_id="cx", target_kind=common_pb2.TARGET_KIND_BINARY),
        metadata=md(keys.operator),
    )
    opened = (
        await subs.OpenRound(
            pb.OpenRoundRequest(request_id="o-cx", tournament_id="cx", generated=SMALL), metadata=md(keys.operator)
        )
    ).round
    model = (
        await subs.CreateModel(
            pb.CreateModelRequest(
                request_id="m-cx", tournament_id="cx", display_name="cx", payout_address=blt_address(9)
            ),
            metadata=md(keys.participant),
        )
    ).model
    before = await table_checksums(database_url, ["submissions"])

    async def slow():
        yield pb.UploadPredictionsRequest(
            header=pb.UploadHeader(request_id="cx", model_id=model.model_id, round=opened.round)
        )
        await asyncio.sleep(30)
        yield pb.UploadPredictionsRequest(chunk=pb.PredictionsChunk(ids=b"a", values=b"\0\0\0\0"))

    call = subs.UploadPredictions(slow(), metadata=md(keys.participant))
    await asyncio.sleep(0.3)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.sleep(0.2)
    assert await table_checksums(database_url, ["submissions"]) == before
