"""Failed-authentication limits hit only the guesser, over real gRPC from two client addresses.

Attack 5 of issue 16: failures were counted by the peer the checking service saw. Payouts forwards
key checks to submissions, so 20 random keys sent to payouts from one client locked every client
of payouts (the operator too) out for a minute, and 21 wrong secrets for a public key id locked
its owner out. Here the guesser connects from another loopback address (127.0.0.2 or .3, through a
small TCP relay bound there), so the services see two real client addresses.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.payouts.v1 import payouts_service_pb2_grpc as po_grpc
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as pb_grpc
from shared.rpc.status import error_info
from tests.integration.conftest import md


@asynccontextmanager
async def relay_from(local_host: str, target: str) -> AsyncIterator[str]:
    """A TCP relay on 127.0.0.1 that reaches ``target`` from ``local_host``: the server sees that address."""
    host, port = target.rsplit(":", 1)
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(host, int(port), local_addr=(local_host, 0))
        for task in (
            asyncio.create_task(pipe(client_reader, server_writer)),
            asyncio.create_task(pipe(server_reader, client_writer)),
        ):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def random_key(key_id: str | None = None) -> str:
    return f"{key_id or 'k_' + secrets.token_hex(6)}.{secrets.token_urlsafe(32)[:43]}"


async def code_of(call) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def fresh_key(services, keys, request_id: str, role: int, participant_id: str = "") -> str:
    """A key made now and never used: no service has it cached or proven."""
    async with grpc.aio.insecure_channel(services["submissions"].address) as channel:
        made = await id_grpc.IdentityServiceStub(channel).CreateApiKey(
            id_pb.CreateApiKeyRequest(request_id=request_id, role=role, participant_id=participant_id),
            metadata=md(keys.operator),
        )
    return made.secret


async def test_a_stranger_cannot_lock_an_owner_out_with_wrong_secrets(services, keys):
    owner = await fresh_key(services, keys, "k-owner", common_pb2.ROLE_PARTICIPANT, keys.participant_id)
    owner_id = owner.split(".", 1)[0]
    address = services["submissions"].address
    async with (
        relay_from("127.0.0.2", address) as stranger_address,
        grpc.aio.insecure_channel(stranger_address) as stranger_channel,
        grpc.aio.insecure_channel(address) as owner_channel,
    ):
        stranger = pb_grpc.SubmissionsServiceStub(stranger_channel)
        codes = [
            await code_of(stranger.ListModels(pb.ListModelsRequest(), metadata=md(random_key(owner_id))))
            for _ in range(50)
        ]
        assert codes[:20] == [grpc.StatusCode.UNAUTHENTICATED] * 20
        assert codes[20:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 30  # the stranger is throttled...
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stranger.ListModels(pb.ListModelsRequest(), metadata=md(random_key(owner_id)))
        assert error_info(info.value).reason == "AUTH_RATE_LIMITED"
        # ... the owner is not: its first call ever, from its own address, with its key id "locked"
        owner_stub = pb_grpc.SubmissionsServiceStub(owner_channel)
        await owner_stub.ListModels(pb.ListModelsRequest(), metadata=md(owner))
        # and once its key has proven itself (cached, or verified within the hour) it works even from the
        # stranger's address (a shared NAT)
        assert await code_of(stranger.ListModels(pb.ListModelsRequest(), metadata=md(owner))) == grpc.StatusCode.OK


async def test_random_keys_sent_to_payouts_lock_out_only_their_sender(services, keys):
    operator = await fresh_key(services, keys, "k-payouts-operator", common_pb2.ROLE_OPERATOR)
    participant = await fresh_key(services, keys, "k-payouts-alice", common_pb2.ROLE_PARTICIPANT, keys.participant_id)
    payouts_address = services["payouts"].address
    async with (
        relay_from("127.0.0.3", payouts_address) as attacker_address,
        grpc.aio.insecure_channel(attacker_address) as attacker_channel,
        grpc.aio.insecure_channel(payouts_address) as channel,
        grpc.aio.insecure_channel(services["submissions"].address) as submissions_channel,
    ):
        attacker = po_grpc.PayoutsServiceStub(attacker_channel)
        codes = [
            await code_of(attacker.ListBatches(po_pb.ListBatchesRequest(), metadata=md(random_key())))
            for _ in range(20)
        ]
        assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 20
        assert (
            await code_of(attacker.ListBatches(po_pb.ListBatchesRequest(), metadata=md(random_key())))
            == grpc.StatusCode.RESOURCE_EXHAUSTED
        )
        # every other client of payouts, with keys payouts has never seen (its own forwarded checks
        # come from the same address as these clients: submissions counted the failures against the
        # attacker, not against payouts)
        payouts = po_grpc.PayoutsServiceStub(channel)
        await payouts.ListBatches(po_pb.ListBatchesRequest(), metadata=md(operator))
        await payouts.GetParticipantBalance(
            po_pb.GetParticipantBalanceRequest(participant_id=keys.participant_id), metadata=md(participant)
        )
        # submissions learned the attacker's address from the forwarded checks: it is throttled there too
        async with (
            relay_from("127.0.0.3", services["submissions"].address) as attacker_submissions,
            grpc.aio.insecure_channel(attacker_submissions) as direct,
        ):
            assert (
                await code_of(
                    pb_grpc.SubmissionsServiceStub(direct).ListModels(pb.ListModelsRequest(), metadata=md(random_key()))
                )
                == grpc.StatusCode.RESOURCE_EXHAUSTED
            )
        await pb_grpc.SubmissionsServiceStub(submissions_channel).ListModels(
            pb.ListModelsRequest(), metadata=md(keys.other)
        )


async def test_only_a_service_may_name_the_source_of_a_check(services, keys):
    async with grpc.aio.insecure_channel(services["submissions"].address) as channel:
        identity = id_grpc.IdentityServiceStub(channel)
        request = id_pb.AuthenticateRequest(api_key=keys.participant, client_address="198.51.100.1")
        with pytest.raises(grpc.aio.AioRpcError) as info:  # a participant can't pose as a forwarder
            await identity.Authenticate(request, metadata=md(keys.participant))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
        answer = await identity.Authenticate(request, metadata=md(keys.services["payouts"]))
        assert answer.principal.participant_id == keys.participant_id
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await identity.Authenticate(
                id_pb.AuthenticateRequest(api_key=keys.participant, client_address="x" * 65),
                metadata=md(keys.services["payouts"]),
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "client_address" in info.value.details()
