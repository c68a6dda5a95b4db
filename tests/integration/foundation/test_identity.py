"""IdentityService over real gRPC and PostgreSQL: participants, keys, authentication paths."""

from __future__ import annotations

import grpc
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as sc_grpc
from crowdquant.submissions.v1 import identity_service_pb2 as pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as pb_grpc
from shared.rpc.status import error_info
from tests.integration.conftest import md


@pytest.fixture
async def identity(services):
    async with grpc.aio.insecure_channel(services["submissions"].address) as channel:
        yield pb_grpc.IdentityServiceStub(channel)


async def expect(code: grpc.StatusCode, call, *, contains: str = "") -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    assert contains.lower() in (info.value.details() or "").lower()
    return info.value


async def test_create_participant_is_idempotent(identity, keys):
    req = pb.CreateParticipantRequest(request_id="r-carol", display_name="carol", email="c@example.org")
    first = await identity.CreateParticipant(req, metadata=md(keys.operator))
    again = await identity.CreateParticipant(req, metadata=md(keys.operator))
    assert first.participant.participant_id == again.participant.participant_id
    assert first.participant.name == f"participants/{first.participant.participant_id}"
    other = pb.CreateParticipantRequest(request_id="r-carol", display_name="carol2")
    err = await expect(
        grpc.StatusCode.ALREADY_EXISTS,
        identity.CreateParticipant(other, metadata=md(keys.operator)),
        contains="request_id",
    )
    assert error_info(err).reason == "REQUEST_ID_REUSED"


async def test_duplicate_display_name_and_bad_fields(identity, keys):
    await expect(
        grpc.StatusCode.ALREADY_EXISTS,
        identity.CreateParticipant(
            pb.CreateParticipantRequest(request_id="r-dup", display_name="alice"), metadata=md(keys.operator)
        ),
        contains="display_name",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        identity.CreateParticipant(
            pb.CreateParticipantRequest(request_id="r-empty", display_name="  "), metadata=md(keys.operator)
        ),
        contains="display_name",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        identity.CreateParticipant(
            pb.CreateParticipantRequest(request_id="", display_name="dave"), metadata=md(keys.operator)
        ),
        contains="request_id",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        identity.CreateParticipant(
            pb.CreateParticipantRequest(request_id="r-mail", display_name="erin", email="not an email"),
            metadata=md(keys.operator),
        ),
        contains="email",
    )


async def test_participant_reads_only_itself(identity, keys):
    own = await identity.GetParticipant(
        pb.GetParticipantRequest(participant_id=keys.participant_id), metadata=md(keys.participant)
    )
    assert own.participant.display_name == "alice"
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        identity.GetParticipant(pb.GetParticipantRequest(participant_id=keys.other_id), metadata=md(keys.participant)),
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        identity.GetParticipant(pb.GetParticipantRequest(participant_id="p_missing"), metadata=md(keys.operator)),
        contains="p_missing",
    )
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        identity.ListParticipants(pb.ListParticipantsRequest(), metadata=md(keys.participant)),
        contains="role participant",
    )


async def test_list_participants_pages_neither_skip_nor_repeat(identity, keys):
    for i in range(7):
        await identity.CreateParticipant(
            pb.CreateParticipantRequest(request_id=f"page-{i}", display_name=f"pp{i}"), metadata=md(keys.operator)
        )
    seen: list[str] = []
    token = ""
    while True:
        resp = await identity.ListParticipants(
            pb.ListParticipantsRequest(page_size=3, page_token=token), metadata=md(keys.operator)
        )
        seen += [p.participant_id for p in resp.participants]
        token = resp.next_page_token
        if not token:
            break
    everything = await identity.ListParticipants(pb.ListParticipantsRequest(page_size=1000), metadata=md(keys.operator))
    assert seen == [p.participant_id for p in everything.participants]
    assert len(seen) == len(set(seen)) >= 9
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        identity.ListParticipants(pb.ListParticipantsRequest(page_size=-1), metadata=md(keys.operator)),
        contains="page_size",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        identity.ListParticipants(pb.ListParticipantsRequest(page_token="garbage!"), metadata=md(keys.operator)),
        contains="page_token",
    )


async def test_keys_lifecycle_and_revocation(identity, keys, services):
    created = await identity.CreateApiKey(
        pb.CreateApiKeyRequest(
            request_id="k-1", participant_id=keys.participant_id, role=common_pb2.ROLE_PARTICIPANT, description="laptop"
        ),
        metadata=md(keys.participant),
    )
    new_key = created.secret
    key_id = created.api_key.key_id
    assert new_key.startswith(key_id + ".")
    assert created.api_key.state == pb.ApiKey.STATE_ACTIVE
    repeat = await identity.CreateApiKey(
        pb.CreateApiKeyRequest(
            request_id="k-1", participant_id=keys.participant_id, role=common_pb2.ROLE_PARTICIPANT, description="laptop"
        ),
        metadata=md(keys.participant),
    )
    assert repeat.api_key.key_id == key_id and repeat.secret == ""

    # the new key works, lists only the owner's keys
    listed = await identity.ListApiKeys(pb.ListApiKeysRequest(), metadata=md(new_key))
    assert {k.participant_id for k in listed.api_keys} == {keys.participant_id}
    assert key_id in {k.key_id for k in listed.api_keys}

    # a participant can't make keys for others or other roles, nor see others' keys
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        identity.CreateApiKey(
            pb.CreateApiKeyRequest(request_id="k-2", role=common_pb2.ROLE_OPERATOR), metadata=md(keys.participant)
        ),
    )
    await expect(
        grpc.StatusCode.PERMISSION_DENIED,
        identity.ListApiKeys(pb.ListApiKeysRequest(participant_id=keys.other_id), metadata=md(keys.participant)),
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        identity.RevokeApiKey(
            pb.RevokeApiKeyRequest(request_id="rv-x", key_id=keys.other.split(".")[0]), metadata=md(keys.participant)
        ),
    )

    revoked = await identity.RevokeApiKey(
        pb.RevokeApiKeyRequest(request_id="rv-1", key_id=key_id), metadata=md(keys.participant)
    )
    assert revoked.api_key.state == pb.ApiKey.STATE_REVOKED
    err = await expect(
        grpc.StatusCode.UNAUTHENTICATED,
        identity.ListApiKeys(pb.ListApiKeysRequest(), metadata=md(new_key)),
        contains="revoked",
    )
    assert error_info(err).reason == "API_KEY_REVOKED"


async def test_bad_role_and_scopes(identity, keys):
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        identity.CreateApiKey(pb.CreateApiKeyRequest(request_id="k-norole"), metadata=md(keys.operator)),
        contains="role",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        identity.CreateApiKey(
            pb.CreateApiKeyRequest(request_id="k-scope", role=common_pb2.ROLE_AUDITOR, scopes=["launch-missiles"]),
            metadata=md(keys.operator),
        ),
        contains="launch-missiles",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        identity.CreateApiKey(
            pb.CreateApiKeyRequest(
                request_id="k-pid", role=common_pb2.ROLE_AUDITOR, participant_id=keys.participant_id
            ),
            metadata=md(keys.operator),
        ),
        contains="participant_id",
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        identity.CreateApiKey(
            pb.CreateApiKeyRequest(request_id="k-nobody", role=common_pb2.ROLE_PARTICIPANT, participant_id="p_nobody"),
            metadata=md(keys.operator),
        ),
        contains="p_nobody",
    )


@pytest.mark.parametrize("service", ["submissions", "scoring", "leaderboard", "payouts"])
async def test_no_key_or_bad_key_is_unauthenticated(services, service):
    from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as lb_pb
    from crowdquant.leaderboard.v1 import leaderboard_service_pb2_grpc as lb_grpc
    from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
    from crowdquant.payouts.v1 import payouts_service_pb2_grpc as po_grpc

    async with grpc.aio.insecure_channel(services[service].address) as channel:
        call = {
            "submissions": lambda m: pb_grpc.IdentityServiceStub(channel).ListParticipants(
                pb.ListParticipantsRequest(), metadata=m
            ),
            "scoring": lambda m: sc_grpc.ScoringServiceStub(channel).ScoreRound(sc_pb.ScoreRoundRequest(), metadata=m),
            "leaderboard": lambda m: lb_grpc.LeaderboardServiceStub(channel).PublishRound(
                lb_pb.PublishRoundRequest(), metadata=m
            ),
            "payouts": lambda m: po_grpc.PayoutsServiceStub(channel).RecordDeposit(
                po_pb.RecordDepositRequest(), metadata=m
            ),
        }[service]
        err = await expect(grpc.StatusCode.UNAUTHENTICATED, call(()), contains="API key")
        assert error_info(err).reason == "API_KEY_MISSING"
        await expect(grpc.StatusCode.UNAUTHENTICATED, call(md("not-a-key")), contains="malformed")
        await expect(grpc.StatusCode.UNAUTHENTICATED, call(md("k_000000000000." + "A" * 43)))


async def test_wrong_role_is_permission_denied_on_remote_services(services, keys):
    async with grpc.aio.insecure_channel(services["scoring"].address) as channel:
        stub = sc_grpc.ScoringServiceStub(channel)
        await expect(
            grpc.StatusCode.PERMISSION_DENIED,
            stub.ScoreRound(sc_pb.ScoreRoundRequest(request_id="x"), metadata=md(keys.participant)),
            contains="role participant may not call ScoreRound",
        )
        await expect(
            grpc.StatusCode.PERMISSION_DENIED,
            stub.ScoreRound(sc_pb.ScoreRoundRequest(request_id="x"), metadata=md(keys.auditor)),
        )


async def test_revoked_key_stops_working_on_other_services(database_url, keys):
    """A remote service caches authentications briefly; after the TTL a revoked key is refused."""
    from tests.support import start_services, stop_services

    running = await start_services(
        database_url, keys.services, names=["submissions", "scoring"], scoring={"auth_cache_seconds": 0.2}
    )
    try:
        async with (
            grpc.aio.insecure_channel(running["submissions"].address) as ch1,
            grpc.aio.insecure_channel(running["scoring"].address) as ch2,
        ):
            identity = pb_grpc.IdentityServiceStub(ch1)
            scoring = sc_grpc.ScoringServiceStub(ch2)
            made = await identity.CreateApiKey(
                pb.CreateApiKeyRequest(request_id="k-remote", role=common_pb2.ROLE_OPERATOR), metadata=md(keys.operator)
            )
            # a valid operator key reaches the RPC itself: authentication passed
            await expect(
                grpc.StatusCode.INVALID_ARGUMENT,
                scoring.CancelScoringRun(sc_pb.CancelScoringRunRequest(), metadata=md(made.secret)),
            )
            await identity.RevokeApiKey(
                pb.RevokeApiKeyRequest(request_id="rv-remote", key_id=made.api_key.key_id), metadata=md(keys.operator)
            )
            import asyncio

            for _ in range(100):
                try:
                    await scoring.CancelScoringRun(sc_pb.CancelScoringRunRequest(), metadata=md(made.secret))
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                        break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("revoked key still accepted by scoring")
    finally:
        await stop_services(running)
