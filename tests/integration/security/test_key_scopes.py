"""Key scopes over real gRPC: a narrow key does only what its scopes say, and can't mint a broader key.

Attack 4 of issue 16: a key made with scopes ["read"] uploaded, staked and changed its payout
address, and a participant issued itself keys with scopes admin, internal and audit. Here every
RPC needs one scope (read, submit, stake, keys, operate), checked by the interceptor of whichever
service answers (payouts learns the scopes through IdentityService.Authenticate).
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.payouts.v1 import payouts_service_pb2_grpc as po_grpc
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from shared.rpc.status import error_info
from tests.integration.conftest import md
from tests.integration.submissions.conftest import SMALL, blt_address, download, upload_requests

T = "scopes"


@pytest.fixture(scope="module")
async def stubs(services):
    async with (
        grpc.aio.insecure_channel(services["submissions"].address) as submissions,
        grpc.aio.insecure_channel(services["payouts"].address) as payouts,
    ):
        yield {"identity": id_grpc.IdentityServiceStub(submissions), "payouts": po_grpc.PayoutsServiceStub(payouts)}


async def new_key(
    stubs,
    creator: str,
    request_id: str,
    scopes: list[str],
    participant_id: str = "",
    role: int = common_pb2.ROLE_PARTICIPANT,
) -> id_pb.CreateApiKeyResponse:
    return await stubs["identity"].CreateApiKey(
        id_pb.CreateApiKeyRequest(request_id=request_id, role=role, participant_id=participant_id, scopes=scopes),
        metadata=md(creator),
    )


async def refused(call, code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED, contains: str = "") -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    assert contains in (info.value.details() or ""), info.value.details()
    return info.value.details() or ""


@pytest.fixture(scope="module")
async def world(subs, stubs, keys):
    """An open round, alice's model, and a read-only key alice made for herself with her full key."""
    op = md(keys.operator)
    await subs.CreateTournament(
        pb.CreateTournamentRequest(request_id="t-scopes", tournament_id=T, target_kind=1), metadata=op
    )
    ref = (
        await subs.OpenRound(pb.OpenRoundRequest(request_id="o-scopes", tournament_id=T, generated=SMALL), metadata=op)
    ).round.round
    model = (
        await subs.CreateModel(
            pb.CreateModelRequest(
                request_id="m-scopes", tournament_id=T, display_name="scopes-alice", payout_address=blt_address(4)
            ),
            metadata=md(keys.participant),
        )
    ).model
    _, ids, _, splits, _, _ = await download(subs, ref, keys.participant)
    live = [i for i, s in zip(ids, splits, strict=True) if s != common_pb2.SPLIT_TRAINING]
    read_only = await new_key(stubs, keys.participant, "k-read", ["read"], keys.participant_id)
    assert list(read_only.api_key.scopes) == ["read"]
    return ref, model, live, read_only.secret


async def test_a_read_only_key_cannot_upload_stake_or_change_the_payout_address(subs, stubs, keys, world):
    ref, model, live, read_key = world
    values = np.random.default_rng(3).uniform(0.3, 0.7, len(live))

    def upload(request_id: str):
        return upload_requests(pb.UploadHeader(request_id=request_id, round=ref, model_id=model.model_id), live, values)

    details = await refused(subs.UploadPredictions(upload("u-read"), metadata=md(read_key)), contains="submit")
    assert "lacks the submit scope that UploadPredictions needs" in details
    await refused(
        stubs["payouts"].SetStake(
            po_pb.SetStakeRequest(request_id="s-read", model_id=model.model_id, amount_satoshis=1_000),
            metadata=md(read_key),
        ),
        contains="stake",
    )
    await refused(
        subs.UpdateModelPayoutAddress(
            pb.UpdateModelPayoutAddressRequest(
                request_id="a-read", model_id=model.model_id, payout_address=blt_address(9)
            ),
            metadata=md(read_key),
        ),
        contains="stake",
    )
    await refused(
        subs.CreateModel(
            pb.CreateModelRequest(
                request_id="m-read", tournament_id=T, display_name="sneaky", payout_address=blt_address(9)
            ),
            metadata=md(read_key),
        ),
        contains="submit",
    )
    err = await refused(new_key(stubs, read_key, "k-from-read", ["read"], keys.participant_id), contains="keys")
    assert "lacks the keys scope" in err
    # what it may do, it does: reads on both services
    models = await subs.ListModels(pb.ListModelsRequest(tournament_id=T), metadata=md(read_key))
    assert [m.model_id for m in models.models] == [model.model_id]
    assert (
        await subs.GetModel(pb.GetModelRequest(model_id=model.model_id), metadata=md(read_key))
    ).model.payout_address == blt_address(4)
    await stubs["payouts"].GetParticipantBalance(
        po_pb.GetParticipantBalanceRequest(participant_id=keys.participant_id), metadata=md(read_key)
    )
    # nothing it tried happened: no upload, no stake, the address unchanged
    listed = await subs.ListSubmissions(
        pb.ListSubmissionsRequest(round=ref, model_id=model.model_id), metadata=md(keys.participant)
    )
    assert list(listed.submissions) == []
    # the full key (the role's scopes) does all of it
    await subs.UploadPredictions(upload("u-full"), metadata=md(keys.participant))
    await subs.UpdateModelPayoutAddress(
        pb.UpdateModelPayoutAddressRequest(request_id="a-full", model_id=model.model_id, payout_address=blt_address(5)),
        metadata=md(keys.participant),
    )


async def test_a_key_cannot_mint_a_broader_key(stubs, keys, world):
    pid = keys.participant_id
    limited = await new_key(stubs, keys.participant, "k-limited", ["read", "keys"], pid)
    # within its own scopes: fine; none asked = its own, not the role's
    made = await new_key(stubs, limited.secret, "k-narrow", ["read"], pid)
    assert list(made.api_key.scopes) == ["read"]
    default = await new_key(stubs, limited.secret, "k-default", [], pid)
    assert sorted(default.api_key.scopes) == ["keys", "read"]
    for scopes in (["read", "submit"], ["stake"]):
        err = await refused(
            new_key(stubs, limited.secret, f"k-broader-{scopes[-1]}", scopes, pid), contains="within its own scopes"
        )
        assert scopes[-1] in err
    # the role's ceiling: a participant asks for operator, auditor or service powers
    for scopes, text in (
        (["admin"], "unknown scope"),
        (["internal"], "unknown scope"),
        (["audit"], "unknown scope"),
        (["operate"], "not available to a participant key"),
    ):
        await refused(
            new_key(stubs, keys.participant, f"k-{scopes[0]}", scopes, pid),
            code=grpc.StatusCode.INVALID_ARGUMENT,
            contains=text,
        )
    await refused(new_key(stubs, keys.participant, "k-op", [], role=common_pb2.ROLE_OPERATOR))
    # the revoked and the listed keys say what they hold
    listed = await stubs["identity"].ListApiKeys(
        id_pb.ListApiKeysRequest(participant_id=pid), metadata=md(keys.participant)
    )
    by_id = {k.key_id: list(k.scopes) for k in listed.api_keys}
    assert by_id[made.api_key.key_id] == ["read"]


async def test_a_read_only_operator_key_cannot_run_the_tournament(subs, stubs, keys, world):
    watcher = await new_key(stubs, keys.operator, "k-op-read", ["read"], role=common_pb2.ROLE_OPERATOR)
    err = await refused(
        subs.CloseRound(pb.CloseRoundRequest(request_id="c-read", round=world[0]), metadata=md(watcher.secret)),
        contains="operate",
    )
    assert "CloseRound" in err
    await refused(
        stubs["payouts"].RecordDeposit(
            po_pb.RecordDepositRequest(request_id="d-read", amount_satoshis=1), metadata=md(watcher.secret)
        ),
        contains="operate",
    )
    info = None
    try:
        await subs.CloseRound(pb.CloseRoundRequest(request_id="c-read2", round=world[0]), metadata=md(watcher.secret))
    except grpc.aio.AioRpcError as exc:
        info = error_info(exc)
    assert info is not None and info.reason == "SCOPE_MISSING" and info.metadata["scope"] == "operate"
    assert (await subs.GetRound(pb.GetRoundRequest(round=world[0]), metadata=md(watcher.secret))).round.state
