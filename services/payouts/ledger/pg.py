"""Reaching asyncpg under the caller's SQLAlchemy connection, and PostgreSQL errors as domain errors.

The ledger takes the caller's ``AsyncConnection`` so its writes share the caller's transaction (a
payout batch row and its ledger entries commit together). Underneath it talks to asyncpg directly:
array parameters, one round trip per batch and streaming are what make it fast.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from services.payouts.ledger import ddl
from services.payouts.ledger.domain import LimitExceeded, UnbalancedEntry
from shared.errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
)

_POISON = f"DO $$ BEGIN RAISE EXCEPTION 'ledger call refused' USING ERRCODE = '{ddl.SQLSTATE_CALL_REFUSED}'; END $$"


async def driver(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under ``conn``, with the caller's transaction begun on the server.

    SQLAlchemy sends BEGIN lazily, just before its first statement. When the caller has begun a
    transaction (``engine.begin()``), its asyncpg adapter is asked to send that BEGIN now: one round
    trip, exactly what SQLAlchemy would do. Otherwise a statement goes through SQLAlchemy, so that its
    autobegun transaction is the one ``conn.commit()`` commits. Either way what the ledger writes
    directly is inside the caller's transaction, never in autocommit.
    """
    raw = await conn.get_raw_connection()
    connection: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    if not connection.is_in_transaction():
        adapter = raw.dbapi_connection
        start = getattr(adapter, "_start_transaction", None)
        if conn.in_transaction() and start is not None and getattr(adapter, "_transaction", True) is None:
            await start()
        else:
            await conn.exec_driver_sql("SELECT 1")
        if not connection.is_in_transaction():
            raise FailedPrecondition("ledger calls need a transaction; use engine.begin(), not autocommit")
    return connection


async def abort_transaction(connection: asyncpg.Connection) -> None:
    """Make the transaction fail so it cannot commit a half-written batch, whatever the caller does next."""
    try:
        await connection.execute(_POISON)
    except asyncpg.PostgresError:
        pass


def _detail(exc: Any) -> dict[str, Any]:
    try:
        parsed = json.loads(getattr(exc, "detail", None) or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _postgres_error(exc: BaseException) -> Any:
    """The asyncpg error inside ``exc`` (SQLAlchemy wraps it when the error surfaces at its COMMIT)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, asyncpg.PostgresError):
            return current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return None


def translate_error(exc: BaseException) -> BaseException:
    """The domain error for a PostgreSQL error raised by the ledger's rules, else ``exc`` unchanged.

    Use it around COMMIT too: the deferred balance check and the chain append run there.
    """
    pg = _postgres_error(exc)
    if pg is None:
        return exc
    state = getattr(pg, "sqlstate", None)
    message = getattr(pg, "message", None) or str(pg)
    detail = _detail(pg)
    if state == ddl.SQLSTATE_LIMIT:
        return LimitExceeded(message, metadata={k: detail[k] for k in ("account", "limit", "shortfall") if k in detail})
    if state == ddl.SQLSTATE_UNBALANCED:
        return UnbalancedEntry(message, metadata={"entry_id": detail.get("entry_id", "")})
    if state == ddl.SQLSTATE_BAD_POSTING:
        return InvalidArgument(message)
    if state in (ddl.SQLSTATE_PENDING_STATE, ddl.SQLSTATE_APPEND_ONLY):
        return FailedPrecondition(message)
    if state in ("40001", "40P01"):
        return Aborted("the ledger write collided with a concurrent one; retry the same request")
    if state == "42501":
        return PermissionDenied(f"the database role may not do this: {message}")
    if state == "23505":
        constraint = getattr(pg, "constraint_name", "") or ""
        if constraint == "ledger_entries_reverses_key":
            return FailedPrecondition("that entry has already been reversed; a reversal happens once")
        if constraint in ("ledger_pending_pkey", "ledger_pending_reserve_entry_id_key"):
            return AlreadyExists("that pending id is already in use by another reservation")
        if constraint in ("ledger_entries_pkey", "ledger_chain_pkey"):
            return Aborted("the same entry id is being written concurrently; retry to get its result")
    return exc


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Run a block, turning the ledger's PostgreSQL errors into domain errors."""
    try:
        yield
    except DomainError:
        raise
    except Exception as exc:
        mapped = translate_error(exc)
        if mapped is exc:
            raise
        raise mapped from exc
