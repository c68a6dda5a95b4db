"""Service identities against the real services: each service's key opens only the RPCs it needs.

Attack 7(d) of issue 14: on main any ``service`` key streamed the hidden targets of an open round
and pushed a Ladder score for any model. Here the leaderboard's and payouts' identities (and a
participant) are refused both, scoring may not push scores, and a service key that names no
service (made before identities) opens nothing internal.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as sc_grpc
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from shared.rpc.status import error_info
from tests.integration.conftest import md
from tests.integration.submissions.conftest import SMALL, blt_address, download, upload_requests

T = "ident"


async def code_of(call) -> tuple[grpc.StatusCode, str]:
    """The status of a unary call or of the first message of a server stream."""
    try:
        if hasattr(call, "__aiter__"):
            async for _ in call:
                break
        else:
            await call
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.fixture(scope="module")
async def stubs(services):
    async with (
        grpc.aio.insecure_channel(services["scoring"].address) as scoring,
        grpc.aio.insecure_channel(services["submissions"].address) as submissions,
    ):
        yield {"scoring": sc_grpc.ScoringServiceStub(scoring), "identity": id_grpc.IdentityServiceStub(submissions)}


@pytest.fixture(scope="module")
async def open_round(subs, keys):
    """An open round with alice's accepted upload (so its Ladder score is a real target)."""
    op = md(keys.operator)
    await subs.CreateTournament(
        pb.CreateTournamentRequest(request_id="t-ident", tournament_id=T, target_kind=1), metadata=op
    )
    ref = (
        await subs.OpenRound(pb.OpenRoundRequest(request_id="o-ident", tournament_id=T, generated=SMALL), metadata=op)
    ).round.round
    model = (
        await subs.CreateModel(
            pb.CreateModelRequest(
                request_id="m-ident", tournament_id=T, display_name="ident-alice", payout_address=blt_address(3)
            ),
            metadata=md(keys.participant),
        )
    ).model
    _, ids, _, splits, _, _ = await download(subs, ref, keys.participant)
    tournament_ids = [i for i, s in zip(ids, splits, strict=True) if s != common_pb2.SPLIT_TRAINING]
    values = np.random.default_rng(5).uniform(0.3, 0.7, len(tournament_ids))
    upload = await subs.UploadPredictions(
        upload_requests(
            pb.UploadHeader(request_id="u-ident", round=ref, model_id=model.model_id), tournament_ids, values
        ),
        metadata=md(keys.participant),
    )
    return ref, upload.submission


def push_score(submission: pb.Submission) -> sc_pb.ScoreValidationRequest:
    """What a forger sends: a Ladder score for a stored upload (hash and all), as submissions would."""
    return sc_pb.ScoreValidationRequest(
        request_id=f"forged:{submission.submission_id}",
        round=submission.round,
        model_id=submission.model_id,
        version=submission.version,
        content_sha256=submission.content_sha256,
    )


async def test_only_scoring_streams_the_hidden_targets_of_an_open_round(subs, keys, open_round):
    ref, _ = open_round
    request = pb.StreamRoundTargetsRequest(round=ref)
    callers = {
        "the leaderboard service": keys.services["leaderboard"],
        "the payouts service": keys.services["payouts"],
        "the submissions service": keys.services["submissions"],
        "role participant": keys.participant,
        "role operator": keys.operator,
        "role auditor": keys.auditor,
    }
    for who, key in callers.items():
        code, details = await code_of(subs.StreamRoundTargets(request, metadata=md(key)))
        assert code == grpc.StatusCode.PERMISSION_DENIED, (who, code, details)
        assert details == f"{who} may not call StreamRoundTargets; allowed: the scoring service"
    rows = 0
    async for message in subs.StreamRoundTargets(request, metadata=md(keys.services["scoring"])):
        rows += len(message.chunk.splits)
    assert rows == SMALL.n_validation + SMALL.n_live


async def test_no_service_pushes_ladder_scores(stubs, keys, open_round):
    """Scoring pulls accepted uploads (reading public scores judges what is new); only the operator may
    name an upload to judge, and no service identity may."""
    _, submission = open_round
    scoring = stubs["scoring"]
    for who, key in {
        "the submissions service": keys.services["submissions"],
        "the leaderboard service": keys.services["leaderboard"],
        "the payouts service": keys.services["payouts"],
        "the scoring service": keys.services["scoring"],
        "role participant": keys.participant,
    }.items():
        code, details = await code_of(scoring.ScoreValidation(push_score(submission), metadata=md(key)))
        assert code == grpc.StatusCode.PERMISSION_DENIED, (who, code, details)
        assert details == f"{who} may not call ScoreValidation; allowed: role operator"
    # reading the public scores (here as another participant) judges alice's upload first
    public = await scoring.GetPublicScores(
        sc_pb.GetPublicScoresRequest(round=submission.round), metadata=md(keys.other)
    )
    assert any(p.model.model_id == submission.model_id for p in public.public_scores)


async def test_each_internal_call_is_open_to_its_caller_only(subs, stubs, keys, open_round):
    """A few more cells, through the remote authenticator too (scoring asks submissions who calls)."""
    ref, _ = open_round
    scoring = stubs["scoring"]
    mark = pb.MarkRoundScoredRequest(request_id="mark-ident", round=ref)
    code, details = await code_of(subs.MarkRoundScored(mark, metadata=md(keys.services["payouts"])))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert details.endswith("allowed: role operator, the scoring service")
    scores = sc_pb.ListRoundScoresRequest(round=ref)
    code, _ = await code_of(scoring.ListRoundScores(scores, metadata=md(keys.services["submissions"])))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = await code_of(scoring.ListRoundScores(scores, metadata=md(keys.services["payouts"])))
    assert code != grpc.StatusCode.PERMISSION_DENIED  # payouts reads round scores: past access control


async def test_service_keys_name_their_service(stubs, keys, services, database_url):
    identity = stubs["identity"]
    op = md(keys.operator)
    for name, request in {
        "service_name": id_pb.CreateApiKeyRequest(request_id="sk-none", role=common_pb2.ROLE_SERVICE),
        "gateway": id_pb.CreateApiKeyRequest(request_id="sk-gw", role=common_pb2.ROLE_SERVICE, service_name="gateway"),
        "empty for a operator key": id_pb.CreateApiKeyRequest(
            request_id="sk-op", role=common_pb2.ROLE_OPERATOR, service_name="scoring"
        ),
    }.items():
        code, details = await code_of(identity.CreateApiKey(request, metadata=op))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and name in details, details
    made = await identity.CreateApiKey(
        id_pb.CreateApiKeyRequest(request_id="sk-scoring", role=common_pb2.ROLE_SERVICE, service_name="scoring"),
        metadata=op,
    )
    assert made.api_key.service_name == "scoring" and made.api_key.role == common_pb2.ROLE_SERVICE
    who = (
        await identity.Authenticate(
            id_pb.AuthenticateRequest(api_key=made.secret), metadata=md(keys.services["payouts"])
        )
    ).principal
    assert (who.role, who.service_name) == (common_pb2.ROLE_SERVICE, "scoring")
    listed = await identity.ListApiKeys(id_pb.ListApiKeysRequest(page_size=1000), metadata=op)
    assert {k.service_name for k in listed.api_keys if k.role == common_pb2.ROLE_SERVICE} == {
        "submissions",
        "scoring",
        "leaderboard",
        "payouts",
    }

    # a service key from before identities (no service name) still authenticates but opens nothing
    import asyncpg

    from shared.db import to_plain_url

    legacy = await identity.CreateApiKey(
        id_pb.CreateApiKeyRequest(request_id="sk-legacy", role=common_pb2.ROLE_SERVICE, service_name="scoring"),
        metadata=op,
    )
    conn = await asyncpg.connect(to_plain_url(database_url))
    try:
        await conn.execute(
            "UPDATE submissions.api_keys SET service_name = NULL WHERE key_id = $1", legacy.api_key.key_id
        )
    finally:
        await conn.close()
    ref = (
        await identity.Authenticate(
            id_pb.AuthenticateRequest(api_key=legacy.secret), metadata=md(keys.services["scoring"])
        )
    ).principal
    assert ref.service_name == ""
    async with grpc.aio.insecure_channel(services["submissions"].address) as channel:
        from crowdquant.submissions.v1 import submissions_service_pb2_grpc as pb_grpc

        subs = pb_grpc.SubmissionsServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in subs.StreamRoundTargets(
                pb.StreamRoundTargetsRequest(round=common_pb2.RoundRef(tournament_id=T, round_number=1)),
                metadata=md(legacy.secret),
            ):
                break
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert info.value.details().startswith("a service key naming no service may not call")
        assert error_info(info.value).reason == "PERMISSION_DENIED"
