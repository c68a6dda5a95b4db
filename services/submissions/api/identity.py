"""IdentityService: participants and API keys. Thin: proto -> handler -> proto."""

from __future__ import annotations

from typing import Any

import grpc

from crowdquant.submissions.v1 import identity_service_pb2 as pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as pb_grpc
from services.submissions.store import identity as repo
from services.submissions.store.tables import SCHEMA
from services.submissions.usecases import identity as handlers
from shared.auth import Role, Scope, ServiceName
from shared.db import Database
from shared.errors import InvalidArgument
from shared.idempotency import run_once
from shared.pagination import decode_token, encode_token, page_size
from shared.rpc.authn import MAX_SOURCE, CachingAuthenticator
from shared.rpc.context import principal, require_participant
from shared.rpc.convert import role_from_proto, role_to_proto, timestamp

SERVICE = pb.DESCRIPTOR.services_by_name["IdentityService"].full_name
P, O, A = Role.PARTICIPANT, Role.OPERATOR, Role.AUDITOR
_, SCORING, LEADERBOARD, PAYOUTS = (name.identity for name in ServiceName)
ACCESS = {
    "CreateParticipant": {O},
    "GetParticipant": {P, O, A, PAYOUTS},
    "ListParticipants": {O, A, LEADERBOARD},
    "CreateApiKey": {P, O},
    "ListApiKeys": {P, O},
    "RevokeApiKey": {P, O},
    # the services that check their callers' keys with submissions (which checks its own locally)
    "Authenticate": {SCORING, LEADERBOARD, PAYOUTS},
}
# The scope each RPC needs (shared.auth.Scope); listing keys shows only public key ids.
SCOPES = {
    "CreateParticipant": Scope.OPERATE,
    "GetParticipant": Scope.READ,
    "ListParticipants": Scope.READ,
    "CreateApiKey": Scope.KEYS,
    "ListApiKeys": Scope.READ,
    "RevokeApiKey": Scope.KEYS,
    "Authenticate": Scope.READ,
}


def participant_pb(row: Any) -> pb.Participant:
    return pb.Participant(
        name=f"participants/{row.participant_id}",
        participant_id=row.participant_id,
        display_name=row.display_name,
        email=row.email,
        create_time=timestamp(row.created_at),
    )


def api_key_pb(row: Any) -> pb.ApiKey:
    return pb.ApiKey(
        name=f"apiKeys/{row.key_id}",
        key_id=row.key_id,
        participant_id=row.participant_id or "",
        role=role_to_proto(Role(row.role)),
        scopes=list(row.scopes),
        description=row.description,
        create_time=timestamp(row.created_at),
        revoke_time=timestamp(row.revoked_at),
        state=pb.ApiKey.STATE_REVOKED if row.revoked_at else pb.ApiKey.STATE_ACTIVE,
        service_name=row.service_name or "",
    )


class IdentityServicer(pb_grpc.IdentityServiceServicer):
    def __init__(self, database: Database, authenticator: CachingAuthenticator, cache_ttl: int) -> None:
        self.db = database
        self.authenticator = authenticator
        self.cache_ttl = cache_ttl
        self.max_keys_per_participant: int | None = None

    async def CreateParticipant(self, request: pb.CreateParticipantRequest, context: grpc.aio.ServicerContext):
        async with self.db.transaction() as conn:

            async def action() -> pb.CreateParticipantResponse:
                row = await handlers.create_participant(conn, request.display_name, request.email)
                return pb.CreateParticipantResponse(participant=participant_pb(row))

            return await run_once(
                conn,
                schema=SCHEMA,
                subject=principal().subject,
                rpc="CreateParticipant",
                request=request,
                response_type=pb.CreateParticipantResponse,
                action=action,
            )

    async def GetParticipant(self, request: pb.GetParticipantRequest, context: grpc.aio.ServicerContext):
        require_participant(request.participant_id, what=f"participant {request.participant_id!r}")
        async with self.db.connect() as conn:
            row = await handlers.require_participant_row(conn, request.participant_id)
        return pb.GetParticipantResponse(participant=participant_pb(row))

    async def ListParticipants(self, request: pb.ListParticipantsRequest, context: grpc.aio.ServicerContext):
        size = page_size(request.page_size)
        after = decode_token(request.page_token, "participants")
        async with self.db.connect() as conn:
            rows = await repo.list_participants(conn, after, size + 1)
        token = encode_token(rows[size - 1].participant_id, "participants") if len(rows) > size else ""
        return pb.ListParticipantsResponse(participants=[participant_pb(r) for r in rows[:size]], next_page_token=token)

    async def CreateApiKey(self, request: pb.CreateApiKeyRequest, context: grpc.aio.ServicerContext):
        role = role_from_proto(request.role)
        caller = principal()
        async with self.db.transaction() as conn:

            async def action() -> pb.CreateApiKeyResponse:
                row, full = await handlers.create_key(
                    conn,
                    caller,
                    request.participant_id,
                    role,
                    list(request.scopes),
                    request.description,
                    max_keys=self.max_keys_per_participant,
                    service_name=request.service_name,
                )
                return pb.CreateApiKeyResponse(api_key=api_key_pb(row), secret=full)

            def without_secret(resp: pb.CreateApiKeyResponse) -> pb.CreateApiKeyResponse:
                return pb.CreateApiKeyResponse(api_key=resp.api_key)

            return await run_once(
                conn,
                schema=SCHEMA,
                subject=caller.subject,
                rpc="CreateApiKey",
                request=request,
                response_type=pb.CreateApiKeyResponse,
                action=action,
                stored=without_secret,
            )

    async def ListApiKeys(self, request: pb.ListApiKeysRequest, context: grpc.aio.ServicerContext):
        caller = principal()
        participant_id = request.participant_id
        if caller.role is Role.PARTICIPANT:
            participant_id = participant_id or caller.participant_id
            require_participant(participant_id, what="these API keys")
        size = page_size(request.page_size)
        after = decode_token(request.page_token, ["keys", participant_id])
        async with self.db.connect() as conn:
            rows = await repo.list_keys(conn, participant_id or None, after, size + 1)
        token = encode_token(rows[size - 1].key_id, ["keys", participant_id]) if len(rows) > size else ""
        return pb.ListApiKeysResponse(api_keys=[api_key_pb(r) for r in rows[:size]], next_page_token=token)

    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, context: grpc.aio.ServicerContext):
        caller = principal()
        async with self.db.transaction() as conn:

            async def action() -> pb.RevokeApiKeyResponse:
                await handlers.require_key_row(conn, request.key_id, caller)
                row = await repo.revoke_key(conn, request.key_id)
                return pb.RevokeApiKeyResponse(api_key=api_key_pb(row))

            response = await run_once(
                conn,
                schema=SCHEMA,
                subject=caller.subject,
                rpc="RevokeApiKey",
                request=request,
                response_type=pb.RevokeApiKeyResponse,
                action=action,
            )
        self.authenticator.invalidate_key(request.key_id)
        return response

    async def Authenticate(self, request: pb.AuthenticateRequest, context: grpc.aio.ServicerContext):
        if not request.api_key:
            raise InvalidArgument("api_key is required", metadata={"field": "api_key"})
        if len(request.client_address) > MAX_SOURCE:
            raise InvalidArgument(
                f"client_address must be at most {MAX_SOURCE} characters", metadata={"field": "client_address"}
            )
        # A forwarded check counts against the caller it was made for, never against the forwarding
        # service (its address is every one of its callers'); a forwarder that names no caller (an
        # older version) is its own source.
        source = request.client_address or f"via {principal().identity}"
        who = await self.authenticator.authenticate(request.api_key, source)
        return pb.AuthenticateResponse(
            principal=pb.Principal(
                key_id=who.key_id,
                role=role_to_proto(who.role),
                participant_id=who.participant_id,
                scopes=list(who.scopes),
                service_name=who.service_name,
            ),
            cache_ttl_seconds=self.cache_ttl,
        )
