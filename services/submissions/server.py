"""The submissions service: participants and keys, tournaments, rounds, data and uploads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc

from crowdquant.submissions.v1 import identity_service_pb2_grpc, submissions_service_pb2_grpc
from services.submissions.api import identity, submissions
from services.submissions.store.tables import SCHEMA
from services.submissions.usecases.identity import verify_key
from services.submissions.usecases.uploads import ReceiptKeys
from shared.rpc.authn import CachingAuthenticator
from shared.rpc.ratelimit import StreamSlots, TokenBuckets
from shared.rpc.server import ServiceContext, ServiceSpec


async def register(server: grpc.aio.Server, ctx: ServiceContext):
    db = ctx.database

    async def verify(api_key: str, source: str):
        return await verify_key(db, api_key)

    ttl = ctx.settings.auth_cache_seconds
    authenticator = CachingAuthenticator(verify, ttl=min(ttl, 5.0))
    identity_servicer = identity.IdentityServicer(db, authenticator, cache_ttl=int(ttl))
    identity_servicer.max_keys_per_participant = getattr(ctx.settings, "max_keys_per_participant", None)
    identity_service_pb2_grpc.add_IdentityServiceServicer_to_server(identity_servicer, server)
    configured = getattr(ctx.settings, "receipt_signing_key", None)
    keys = ReceiptKeys(configured.get_secret_value().encode() if configured else None)

    async def load_keys() -> None:
        async with db.transaction() as conn:
            await keys.load(conn)

    ctx.on_ready.append(load_keys)
    servicer = submissions.SubmissionsServicer(db, keys)
    settings = ctx.settings
    servicer.upload_limit = TokenBuckets(settings.uploads_per_minute / 60.0, settings.upload_burst)
    servicer.upload_slots = asyncio.Semaphore(settings.upload_concurrency)
    servicer.upload_streams = StreamSlots(settings.upload_streams_per_participant, settings.upload_streams)
    servicer.upload_idle_seconds = settings.upload_idle_seconds
    servicer.upload_deadline_seconds = settings.upload_deadline_seconds
    servicer.max_models_per_participant = settings.max_models_per_participant
    submissions_service_pb2_grpc.add_SubmissionsServiceServicer_to_server(servicer, server)
    ctx.policy.add(identity.SERVICE, identity.ACCESS, identity.SCOPES)
    ctx.policy.add(submissions.SERVICE, submissions.ACCESS, submissions.SCOPES)
    return [identity.SERVICE, submissions.SERVICE], authenticator


SPEC = ServiceSpec(
    name="submissions", schema=SCHEMA, migrations=Path(__file__).parent / "store" / "migrations", register=register
)
