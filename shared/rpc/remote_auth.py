"""Authenticate callers by asking the submissions service, which owns the keys."""

from __future__ import annotations

import grpc

from crowdquant.submissions.v1 import identity_service_pb2 as pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as pb_grpc
from shared.auth import Principal
from shared.config import CommonSettings
from shared.errors import Unauthenticated, Unavailable
from shared.rpc.authn import CachingAuthenticator
from shared.rpc.client import call_with_retry, open_channel
from shared.rpc.convert import role_from_proto


def remote_authenticator(settings: CommonSettings) -> tuple[CachingAuthenticator, grpc.aio.Channel]:
    """A cached authenticator backed by ``IdentityService.Authenticate`` (with this service's own key).

    The cache keeps the whole principal, the service name of a service key included. Each check
    carries the caller's source, so submissions counts a failure against that caller, not against us.
    """
    channel = open_channel(settings.submissions_addr)
    stub = pb_grpc.IdentityServiceStub(channel)
    service_key = settings.service_api_key.get_secret_value() if settings.service_api_key else None

    async def verify(api_key: str, source: str) -> Principal:
        if service_key is None:
            raise Unavailable("CROWDQUANT_SERVICE_API_KEY is not set: this service cannot check API keys")
        try:
            request = pb.AuthenticateRequest(api_key=api_key, client_address=source)
            response = await call_with_retry(stub.Authenticate, request, api_key=service_key, deadline=5.0, attempts=2)
        except Unauthenticated as exc:
            raise Unauthenticated(exc.message, reason=exc.reason) from None
        p = response.principal
        return Principal(
            key_id=p.key_id,
            role=role_from_proto(p.role),
            participant_id=p.participant_id,
            scopes=tuple(p.scopes),
            service_name=p.service_name,
        )

    return CachingAuthenticator(verify, ttl=settings.auth_cache_seconds), channel


def attach(ctx) -> CachingAuthenticator:  # type: ignore[no-untyped-def]
    """The remote authenticator of a service context; its channel closes when the service stops."""
    authenticator, channel = remote_authenticator(ctx.settings)

    async def close() -> None:
        await channel.close()

    ctx.on_stop.append(close)
    return authenticator
