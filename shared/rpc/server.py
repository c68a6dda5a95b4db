"""Start a crowdquant gRPC service: database, migrations, health, reflection, graceful shutdown.

The server listens at once, even when the database is down: health reports NOT_SERVING until the
database answers and the schema is current, and a watcher keeps checking, so a service recovers
without a restart when its database comes back. The service logs in as its own role; it migrates
its schema only in development, when it was given an administrator's URL (``DatabaseAccess``);
otherwise a migration job does, and the service waits for it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from shared import pagination
from shared.config import ConfigError, ServiceSettings
from shared.db import Database, DatabaseAccess, prepare, schema_is_current
from shared.logging import get_logger
from shared.rpc.access import AccessPolicy
from shared.rpc.authn import Authenticator
from shared.rpc.client import use_tls
from shared.rpc.interceptor import RpcInterceptor

log = get_logger("crowdquant.server")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
LIVENESS = "liveness"


@dataclass
class ServiceContext:
    """What a service's ``register`` hook gets to build its servicers."""

    settings: ServiceSettings
    database: Database
    policy: AccessPolicy
    on_ready: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServiceSpec:
    """A service's shape: its name, schema, migrations and how to register its servicers.

    ``register`` adds servicers to the server and returns their full service names (for health
    and reflection) and the authenticator the service uses. ``login_groups`` are the roles its
    login role belongs to (and inherits the grants of); it belongs to no other. ``other_schemas``
    are further schemas its migrations make (owned by the migration role like its own).
    """

    name: str
    schema: str
    migrations: Path
    register: Callable[[grpc.aio.Server, ServiceContext], Awaitable[tuple[list[str], Authenticator | None]]]
    login_groups: tuple[str, ...] = ()
    other_schemas: tuple[str, ...] = ()


class RunningService:
    def __init__(
        self,
        spec: ServiceSpec,
        ctx: ServiceContext,
        server: grpc.aio.Server,
        port: int,
        health_servicer: Any,
        service_names: list[str],
        access: DatabaseAccess,
    ) -> None:
        self.spec = spec
        self.access = access
        self.ctx = ctx
        self.server = server
        self.port = port
        self.health = health_servicer
        self.service_names = service_names
        self.ready = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._migrated = False
        self._serving: bool | None = None

    @property
    def address(self) -> str:
        return f"{self.ctx.settings.grpc_host}:{self.port}"

    async def _set_serving(self, serving: bool) -> None:
        if serving == self._serving:
            return
        self._serving = serving
        status = SERVING if serving else NOT_SERVING
        for name in ["", *self.service_names]:
            await self.health.set(name, status)
        log.info("health changed", status="SERVING" if serving else "NOT_SERVING")

    async def check_once(self) -> bool:
        """One readiness check: the schema current (migrated here in development), then a ping."""
        db = self.ctx.database
        if not self._migrated:
            try:
                if self.access.admin_url is not None:
                    await prepare(self.access.admin_url, [self.spec])
                elif not await schema_is_current(db, self.spec.schema, self.spec.migrations):
                    log.warning("schema not current; waiting for the migration job", schema=self.spec.schema)
                    await self._set_serving(False)
                    return False
                self._migrated = True
                for hook in self.ctx.on_ready:
                    await hook()
            except Exception as exc:
                log.warning("database not ready", error=f"{type(exc).__name__}: {str(exc)[:200]}")
                await self._set_serving(False)
                return False
        ok = await db.ping()
        await self._set_serving(ok)
        if ok:
            self.ready.set()
        return ok

    async def _watch(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.ctx.settings.health_interval_seconds)

    def start_watching(self) -> None:
        self._watcher = asyncio.create_task(self._watch(), name=f"{self.spec.name}-health")

    async def stop(self, grace: float | None = None) -> None:
        grace = self.ctx.settings.grace_seconds if grace is None else grace
        if self._watcher:
            self._watcher.cancel()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        for hook in self.ctx.on_stop:
            await hook()
        await self.ctx.database.dispose()
        log.info("stopped")


async def start_service(spec: ServiceSpec, settings: ServiceSettings, access: DatabaseAccess) -> RunningService:
    """Build and start the server; returns once it listens (readiness follows in the background)."""
    options = [
        (
            "grpc.max_receive_message_length",
            min(
                settings.max_message_bytes,
                getattr(settings, "max_receive_message_bytes", None) or settings.max_message_bytes,
            ),
        ),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    secret = settings.page_token_secret or settings.service_api_key
    pagination.configure(secret.get_secret_value() if secret else None)
    database = Database(
        access.url,
        schema=spec.schema,
        pool_size=settings.db_pool_size,
        connect_timeout=settings.db_connect_timeout_seconds,
    )
    policy = AccessPolicy()
    ctx = ServiceContext(settings=settings, database=database, policy=policy)
    interceptor = RpcInterceptor(policy, None)
    # No maximum_concurrent_rpcs: gRPC refuses every call (health checks included) once it is reached.
    # Long-lived calls are bounded where they are served instead (e.g. upload streams per participant).
    server = grpc.aio.server(interceptors=[interceptor], options=options)
    service_names, authenticator = await spec.register(server, ctx)
    interceptor.authenticator = authenticator
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    use_tls(settings.tls_ca_file)
    address = f"{settings.grpc_host}:{settings.port}"
    if settings.tls_cert_file and settings.tls_key_file:
        credentials = grpc.ssl_server_credentials(
            [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())]
        )
        port = server.add_secure_port(address, credentials)
    elif settings.tls_cert_file or settings.tls_key_file:
        raise ConfigError("CROWDQUANT_TLS_CERT_FILE and CROWDQUANT_TLS_KEY_FILE must be set together")
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {settings.grpc_host}:{settings.port}")
    running = RunningService(spec, ctx, server, port, health_servicer, service_names, access)
    for name in ["", *service_names]:
        await health_servicer.set(name, NOT_SERVING)
    # "liveness" says only that the process answers: a database outage takes a pod out of
    # traffic (readiness on "") but must not get it restarted.
    await health_servicer.set(LIVENESS, SERVING)
    await server.start()
    log.info("listening", address=running.address, services=service_names)
    running.start_watching()
    return running


async def serve_forever(spec: ServiceSpec, settings: ServiceSettings, access: DatabaseAccess) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully within the grace period."""
    running = await start_service(spec, settings, access)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down", grace_seconds=settings.grace_seconds)
    await running.stop()
