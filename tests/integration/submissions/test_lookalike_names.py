"""Lookalike names over real gRPC: ``bо-linear`` (Cyrillic о) is refused next to ``bo-linear``.

Attack 7 of issue 16: a participant named a model like the board's leader with one Cyrillic letter.
Names are unique by their TR39 skeleton (a unique index), for models within a tournament and for
participants, and two concurrent creates of lookalikes can't both pass.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from shared.rpc.status import error_info
from tests.integration.conftest import md
from tests.integration.submissions.conftest import blt_address

T = "lookalike"


@pytest.fixture(scope="module")
async def tournament(subs, keys):
    await subs.CreateTournament(
        pb.CreateTournamentRequest(request_id="t-look", tournament_id=T, target_kind=1), metadata=md(keys.operator)
    )
    await subs.CreateTournament(
        pb.CreateTournamentRequest(request_id="t-look2", tournament_id=T + "-2", target_kind=1),
        metadata=md(keys.operator),
    )
    return T


def create_model(subs, key: str, name: str, request_id: str, tournament_id: str = T):
    return subs.CreateModel(
        pb.CreateModelRequest(
            request_id=request_id, tournament_id=tournament_id, display_name=name, payout_address=blt_address(7)
        ),
        metadata=md(key),
    )


async def test_a_lookalike_model_name_is_refused_naming_the_existing_one(subs, keys, tournament):
    await create_model(subs, keys.participant, "bo-linear", "m-bo")
    for i, lookalike in enumerate(["b\u043e-linear", "bo-Iinear", "\uff42\uff4f-linear", "bo-linear"]):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await create_model(subs, keys.other, lookalike, f"m-fake-{i}")
        assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS, info.value.details()
        assert "'bo-linear'" in info.value.details()
        if lookalike != "bo-linear":
            assert error_info(info.value).reason == "NAME_LOOKALIKE"
            assert error_info(info.value).metadata["existing"] == "bo-linear"
    # a different name is fine, and so is the same name in another tournament
    await create_model(subs, keys.other, "bob-linear", "m-bob")
    await create_model(subs, keys.other, "b\u043e-linear", "m-other-t", tournament_id=T + "-2")


async def test_concurrent_lookalike_creates_cannot_both_pass(subs, keys, tournament):
    names = ["ada-linear", "\u0430da-linear", "ad\u0430-linear", "\u0430d\u0430-linear"]  # Latin and Cyrillic a
    results = await asyncio.gather(
        *(
            create_model(subs, keys.participant if i % 2 else keys.other, name, f"m-race-{i}")
            for i, name in enumerate(names)
        ),
        return_exceptions=True,
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(created) == 1 and len(refused) == 3, results
    assert all(r.code() == grpc.StatusCode.ALREADY_EXISTS for r in refused)


async def test_a_lookalike_participant_name_is_refused(services, keys):
    async with grpc.aio.insecure_channel(services["submissions"].address) as channel:
        identity = id_grpc.IdentityServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:  # the fixture's "alice", with a Cyrillic а
            await identity.CreateParticipant(
                id_pb.CreateParticipantRequest(request_id="p-fake-alice", display_name="\u0430lice"),
                metadata=md(keys.operator),
            )
        assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "looks like the existing participant 'alice'" in info.value.details()
        made = await identity.CreateParticipant(
            id_pb.CreateParticipantRequest(request_id="p-alicia", display_name="alicia"), metadata=md(keys.operator)
        )
        assert made.participant.display_name == "alicia"
