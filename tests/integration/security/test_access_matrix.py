"""Every cell of docs/access-matrix.md, called over real gRPC: who may call what.

"deny" means UNAUTHENTICATED/PERMISSION_DENIED (or NOT_FOUND where a participant may not even learn
that another's resource exists); "allow" means the call got past access control, whatever the
request's own fate (requests are built so that an allowed call changes nothing of importance).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import grpc
import numpy as np
import pytest
from google.protobuf import message_factory

from crowdquant.common.v1 import common_pb2
from crowdquant.leaderboard.v1 import leaderboard_service_pb2
from crowdquant.payouts.v1 import ledger_audit_service_pb2, payouts_service_pb2
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as sc_grpc
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from tests.integration.conftest import md
from tests.integration.submissions.conftest import blt_address, upload_requests

ROOT = Path(__file__).resolve().parents[3]
MATRIX = ROOT / "docs" / "access-matrix.md"
MODULES = {
    "IdentityService": id_pb,
    "SubmissionsService": pb,
    "ScoringService": sc_pb,
    "LeaderboardService": leaderboard_service_pb2,
    "PayoutsService": payouts_service_pb2,
    "LedgerAuditService": ledger_audit_service_pb2,
}
HOSTS = {
    "IdentityService": "submissions",
    "SubmissionsService": "submissions",
    "ScoringService": "scoring",
    "LeaderboardService": "leaderboard",
    "PayoutsService": "payouts",
    "LedgerAuditService": "payouts",
}
SERVICE_CALLERS = ["submissions", "scoring", "leaderboard", "payouts"]  # each service's own identity
CALLERS = ["anonymous", "owner", "other", "operator", "auditor", *SERVICE_CALLERS]
SPEC = pb.GeneratedDatasetSpec(
    seed=31, n_train=300, n_validation=400, n_live=200, n_features=4, n_training_eras=3, n_tournament_eras=4
)


def test_matrix_is_generated_from_the_access_rules():
    import importlib.util

    spec = importlib.util.spec_from_file_location("access_matrix", ROOT / "scripts" / "access_matrix.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert MATRIX.read_text() == module.render(), "docs/access-matrix.md is stale: run scripts/access_matrix.py"


def matrix_rows() -> list[tuple[str, str, list[str]]]:
    rows = []
    for line in MATRIX.read_text().splitlines():
        m = re.match(r"\| `(\w+)\.(\w+)` \| (?:`\w+`|none) \| (.+) \|$", line)  # the scope column skipped
        if m:
            rows.append((m.group(1), m.group(2), [c.strip() for c in m.group(3).split("|")]))
    return rows


@pytest.fixture(scope="module")
async def world(subs, keys, services):
    """alice (owner) and bob (other); an open round with alice's upload; a scored, unpublished round."""
    op = md(keys.operator)
    await subs.CreateTournament(
        pb.CreateTournamentRequest(
            request_id="t-acl",
            tournament_id="acl",
            target_kind=1,
            rules=pb.TournamentRules(upload=pb.UploadRules(min_std=-1)),
        ),
        metadata=op,
    )
    scored = (
        await subs.OpenRound(
            pb.OpenRoundRequest(request_id="o-acl-1", tournament_id="acl", generated=SPEC), metadata=op
        )
    ).round
    model = (
        await subs.CreateModel(
            pb.CreateModelRequest(
                request_id="m-acl", tournament_id="acl", display_name="acl-alice", payout_address=blt_address(50)
            ),
            metadata=md(keys.participant),
        )
    ).model
    ids = []
    async for m in subs.StreamRoundTargets(
        pb.StreamRoundTargetsRequest(round=scored.round), metadata=md(keys.services["scoring"])
    ):
        ids += m.chunk.ids.decode().split("\n")
    values = np.random.default_rng(1).uniform(0.3, 0.7, len(ids))
    await subs.UploadPredictions(
        upload_requests(
            pb.UploadHeader(request_id="u-acl-1", round=scored.round, model_id=model.model_id), ids, values
        ),
        metadata=md(keys.participant),
    )
    await subs.CloseRound(pb.CloseRoundRequest(request_id="c-acl", round=scored.round), metadata=op)
    await subs.ResolveRound(
        pb.ResolveRoundRequest(request_id="r-acl", round=scored.round, use_generated_targets=True), metadata=op
    )
    async with grpc.aio.insecure_channel(services["scoring"].address) as channel:
        run = (
            await sc_grpc.ScoringServiceStub(channel).ScoreRound(
                sc_pb.ScoreRoundRequest(request_id="s-acl", round=scored.round), metadata=op
            )
        ).run
        assert run.state == sc_pb.ScoringRun.STATE_SUCCEEDED, run.error_message
    opened = (
        await subs.OpenRound(
            pb.OpenRoundRequest(request_id="o-acl-2", tournament_id="acl", generated=SPEC), metadata=op
        )
    ).round
    ids2 = []
    async for m in subs.StreamRoundTargets(
        pb.StreamRoundTargetsRequest(round=opened.round), metadata=md(keys.services["scoring"])
    ):
        ids2 += m.chunk.ids.decode().split("\n")
    await subs.UploadPredictions(
        upload_requests(
            pb.UploadHeader(request_id="u-acl-2", round=opened.round, model_id=model.model_id),
            ids2,
            values[: len(ids2)],
        ),
        metadata=md(keys.participant),
    )
    async with grpc.aio.insecure_channel(services["submissions"].address) as channel:
        from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc

        spare = (
            await id_grpc.IdentityServiceStub(channel).CreateApiKey(
                id_pb.CreateApiKeyRequest(
                    request_id="spare-acl", participant_id=keys.participant_id, role=common_pb2.ROLE_PARTICIPANT
                ),
                metadata=md(keys.participant),
            )
        ).api_key.key_id
    return {"open": opened.round, "scored": scored.round, "model": model.model_id, "spare_key": spare}


def build(service: str, rpc: str, world: dict, keys) -> object:
    """A request referencing alice's resources where the RPC is about a resource."""
    module = MODULES[service]
    descriptor = module.DESCRIPTOR.services_by_name[service].methods_by_name[rpc]
    request = message_factory.GetMessageClass(descriptor.input_type)()
    alice, model = keys.participant_id, world["model"]
    fields = {
        ("IdentityService", "GetParticipant"): {"participant_id": alice},
        ("IdentityService", "CreateApiKey"): {
            "request_id": "acl-key",
            "participant_id": alice,
            "role": common_pb2.ROLE_PARTICIPANT,
            "scopes": ["bogus-scope"],
        },
        ("IdentityService", "ListApiKeys"): {"participant_id": alice},
        ("IdentityService", "RevokeApiKey"): {"request_id": "acl-revoke", "key_id": world["spare_key"]},
        ("IdentityService", "Authenticate"): {"api_key": keys.participant},
        ("SubmissionsService", "CreateModel"): {
            "request_id": "acl-model",
            "tournament_id": "acl",
            "participant_id": alice,
            "display_name": "",
        },
        ("SubmissionsService", "UpdateModelPayoutAddress"): {
            "request_id": "acl-addr",
            "model_id": model,
            "payout_address": "not-an-address",
        },
        ("SubmissionsService", "GetSubmission"): {"round": world["open"], "model_id": model},
        ("SubmissionsService", "ListSubmissions"): {"round": world["open"], "participant_id": alice},
        ("SubmissionsService", "GetRound"): {"round": world["open"]},
        ("SubmissionsService", "DownloadRoundData"): {"round": world["open"]},
        ("ScoringService", "GetScores"): {"round": world["scored"], "model_id": model},
        ("ScoringService", "ListRoundScores"): {"round": world["scored"]},
        ("ScoringService", "GetMetaModel"): {"round": world["scored"]},
        ("PayoutsService", "GetParticipantBalance"): {"participant_id": alice},
        ("PayoutsService", "SetStake"): {"request_id": "acl-stake", "model_id": model, "amount_satoshis": -1},
        ("PayoutsService", "GetStake"): {"model_id": model},
        ("PayoutsService", "ListStakes"): {"participant_id": alice},
        ("PayoutsService", "GetPayouts"): {"participant_id": alice},
    }.get((service, rpc), {})
    for name, value in fields.items():
        field = getattr(request, name)
        if hasattr(field, "CopyFrom"):
            field.CopyFrom(value)
        elif isinstance(value, list):
            field.extend(value)
        else:
            setattr(request, name, value)
    return request, descriptor


async def call(channel, service: str, rpc: str, descriptor, request, metadata, world) -> grpc.StatusCode:
    path = f"/{descriptor.containing_service.full_name}/{rpc}"
    out = message_factory.GetMessageClass(descriptor.output_type)
    kwargs = {"request_serializer": type(request).SerializeToString, "response_deserializer": out.FromString}
    try:
        if descriptor.client_streaming:
            messages = [request]
            if rpc == "UploadPredictions":
                header = request.__class__(
                    header=pb.UploadHeader(request_id="acl-up", round=world["open"], model_id=world["model"])
                )
                chunk = request.__class__(chunk=pb.PredictionsChunk(ids=b"x", values=b"\0\0\0\0"))
                messages = [header, chunk]

            async def stream():
                for message in messages:
                    yield message

            await channel.stream_unary(path, **kwargs)(stream(), metadata=metadata, timeout=30)
        elif descriptor.server_streaming:
            async for _ in channel.unary_stream(path, **kwargs)(request, metadata=metadata, timeout=30):
                break
        else:
            await channel.unary_unary(path, **kwargs)(request, metadata=metadata, timeout=30)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_every_cell(services, keys, world):
    caller_md = {
        "anonymous": (),
        "owner": md(keys.participant),
        "other": md(keys.other),
        "operator": md(keys.operator),
        "auditor": md(keys.auditor),
        **{name: md(keys.services[name]) for name in SERVICE_CALLERS},
    }
    failures = []
    checked = 0
    channels = {name: grpc.aio.insecure_channel(svc.address) for name, svc in services.items()}
    try:
        for service, rpc, cells in matrix_rows():
            request, descriptor = build(service, rpc, world, keys)
            for caller, cell in zip(CALLERS, cells, strict=True):
                code = await call(channels[HOSTS[service]], service, rpc, descriptor, request, caller_md[caller], world)
                denied = code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED) or (
                    caller == "other" and cell.startswith("deny") and code == grpc.StatusCode.NOT_FOUND
                )
                unpublished = cell.startswith("allow once") and caller in ("owner", "other")
                expect_deny = cell.startswith("deny") or unpublished
                if denied != expect_deny or code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                    failures.append(f"{service}.{rpc} as {caller}: expected {cell}, got {code.name}")
                checked += 1
            await asyncio.sleep(0)
    finally:
        for channel in channels.values():
            await channel.close()
    assert checked >= len(CALLERS) * 70
    assert not failures, "\n".join(failures)
