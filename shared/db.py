"""Database access: async SQLAlchemy on asyncpg, one schema and one login role per service, Alembic.

``resolve_database_url`` picks the server (``DATABASE_URL`` or the embedded one);
``service_access`` says how one service reaches it: always as its own login role (``cq_<service>``,
see ``shared/db_roles.py``), and with an administrator's URL only in development (the embedded
server, or a ``DATABASE_URL`` that is not the service's role), from which the roles are made and the
schema migrated as the migration role. ``Database`` owns the engine; ``transaction()`` is the unit of
work: one database transaction per state change, so a failed request writes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import asyncpg
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from shared import db_roles, embedded_pg
from shared.config import CommonSettings
from shared.errors import Unavailable
from shared.logging import get_logger

log = get_logger(__name__)

# Errors that mean "the database is not reachable right now": callers get UNAVAILABLE and may retry.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    ConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection free in time: busy, retry shortly
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the database is down rather than the request bad."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, UNAVAILABLE_ERRORS):
            return True
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return True
        orig = getattr(current, "orig", None)
        current = orig if orig is not None else (current.__cause__ or current.__context__)
    return False


def to_async_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    if scheme in {"postgresql", "postgres"}:
        scheme = "postgresql+asyncpg"
    return f"{scheme}://{rest}"


def to_plain_url(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


def resolve_database_url(settings: CommonSettings) -> str:
    """The server to use: ``DATABASE_URL`` if set, else the embedded server's ``crowdquant`` database."""
    if settings.database_url is not None:
        return to_plain_url(settings.database_url.get_secret_value())
    server_uri = embedded_pg.start(settings.data_dir)
    return embedded_pg.with_database(server_uri, embedded_pg.DEFAULT_DATABASE)


@dataclass(frozen=True)
class DatabaseAccess:
    """How one service reaches its database: ``url`` logs in as its own role, always.

    ``admin_url`` is set only in development (embedded server, or a ``DATABASE_URL`` that is not the
    service's role): the service then creates the roles and migrates its schema itself, as the
    migration role. In production it is None: a migration job has done that, and the service waits
    (NOT_SERVING) until its schema is current.
    """

    url: str
    admin_url: str | None = None


def service_access(settings: CommonSettings, service: str) -> DatabaseAccess:
    """The service's own URL, and the admin URL it came from when it was derived (development)."""
    url = resolve_database_url(settings)
    if settings.database_url is not None and db_roles.url_user(url) == db_roles.login_role(service):
        return DatabaseAccess(url)
    return admin_access(url, service)


def admin_access(admin_url: str, service: str) -> DatabaseAccess:
    """Development: ``service`` logs in as its own role, derived from an administrator's URL."""
    admin_url = to_plain_url(admin_url)
    return DatabaseAccess(db_roles.derive_url(admin_url, db_roles.login_role(service)), admin_url)


class SchemaSpec(Protocol):
    """What :func:`prepare` needs of a service (``shared.rpc.server.ServiceSpec`` has it)."""

    name: str
    schema: str
    migrations: Path
    login_groups: tuple[str, ...]
    other_schemas: tuple[str, ...]


async def prepare(admin_url: str, specs: Iterable[SchemaSpec]) -> None:
    """As an administrator: make the database and the roles, then migrate as the migration role.

    Schemas made before the roles existed (by the administrator itself) are handed to the migration
    role first, so an old development database carries on.
    """
    specs = list(specs)
    await ensure_database(admin_url)
    await db_roles.provision(admin_url, {spec.name: spec.login_groups for spec in specs})
    await db_roles.adopt(admin_url, [s for spec in specs for s in (spec.schema, *spec.other_schemas)])
    migrator = db_roles.derive_url(admin_url, db_roles.MIGRATION_ROLE)
    for spec in specs:
        await migrate(migrator, spec.schema, spec.migrations)


async def schema_is_current(database: Database, schema: str, migrations_dir: Path) -> bool:
    """Whether ``schema`` is at the newest revision, as the service's own role can see it."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    try:
        async with database.connect() as conn:
            current = (await conn.execute(text(f'SELECT version_num FROM "{schema}".alembic_version'))).scalar()
    except sqlalchemy.exc.DBAPIError as exc:
        if is_unavailable(exc):
            raise
        return False  # no schema yet, or not granted to this role yet: the migration has not run
    return current == head


async def ensure_database(url: str) -> None:
    """Create the URL's database if it does not exist (needs a role that may create databases)."""
    name = urlsplit(url).path.lstrip("/")
    if not name:
        return
    admin = await _connect(embedded_pg.with_database(url, "postgres"))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.exceptions.DuplicateDatabaseError:
                pass
    finally:
        await admin.close()


async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(to_plain_url(url), timeout=10)


class Database:
    """The engine of one service, with its schema; it logs in as the URL's role and stays that role."""

    def __init__(
        self, url: str, *, schema: str | None = None, pool_size: int = 10, connect_timeout: float = 5.0
    ) -> None:
        self.url = to_plain_url(url)
        self.schema = schema
        self.engine: AsyncEngine = create_async_engine(
            to_async_url(self.url),
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=connect_timeout,
            connect_args={"timeout": connect_timeout, "command_timeout": 300},
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One unit of work: commits on success, rolls back on any error."""
        async with self._guarded(self.engine.begin()) as conn:
            yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (autocommit-free, rolled back at the end)."""
        async with self._guarded(self.engine.connect()) as conn:
            yield conn

    @staticmethod
    @asynccontextmanager
    async def _guarded(opening: Any) -> AsyncIterator[AsyncConnection]:
        """A down database becomes UNAVAILABLE (retry shortly) instead of an unexpected error."""
        try:
            async with opening as conn:
                yield conn
        except BaseException as exc:
            if is_unavailable(exc):
                raise Unavailable("the database is unavailable; retry shortly") from exc
            raise

    async def ping(self, timeout: float = 3.0) -> bool:
        try:
            async with asyncio.timeout(timeout):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()


_locks: dict[int, asyncio.Lock] = {}


def _migration_lock() -> asyncio.Lock:
    """Alembic's context is process-global: migrations of one process must not interleave."""
    loop_id = id(asyncio.get_running_loop())
    return _locks.setdefault(loop_id, asyncio.Lock())


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"crowdquant-migrate:{name}".encode()).digest()[:8], "big", signed=True)


async def migrate(url: str, schema: str, migrations_dir: Path) -> None:
    """Bring ``schema`` to the newest Alembic revision in ``migrations_dir``.

    Services of one machine may start together: an advisory lock per schema serialises them.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["schema"] = schema

    def _upgrade(sync_conn) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    engine = create_async_engine(to_async_url(url), connect_args={"timeout": 10})
    try:
        async with _migration_lock(), engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key(schema)})
            await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await conn.run_sync(_upgrade)
    finally:
        await engine.dispose()
    log.info("schema migrated", schema=schema)
