"""Request-id idempotency for mutating RPCs, inside the caller's transaction.

The first request with an id claims it (a row in ``<schema>.idempotency_keys``), does its work and
stores its response; a repeat with the same content gets that stored response; a repeat with other
content is ALREADY_EXISTS. Concurrent repeats wait on the row's unique index until the first commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from google.protobuf.message import Message
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.errors import AlreadyExists, InvalidArgument

M = TypeVar("M", bound=Message)
MAX_REQUEST_ID = 128

IDEMPOTENCY_DDL = """
CREATE TABLE {schema}.idempotency_keys (
    subject     text NOT NULL,
    request_id  text NOT NULL,
    rpc         text NOT NULL,
    fingerprint bytea NOT NULL,
    response    bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, request_id)
)
"""


def fingerprint(request: Message) -> bytes:
    """A hash of the request without its request_id (deterministic serialisation)."""
    copy = type(request)()
    copy.CopyFrom(request)
    if "request_id" in copy.DESCRIPTOR.fields_by_name:
        copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).digest()


def check_request_id(request_id: str) -> str:
    if not request_id or not request_id.strip():
        raise InvalidArgument(
            "request_id is required on every mutating call (e.g. a UUID)", metadata={"field": "request_id"}
        )
    if len(request_id) > MAX_REQUEST_ID or not request_id.isprintable():
        raise InvalidArgument(
            f"request_id must be 1-{MAX_REQUEST_ID} printable characters", metadata={"field": "request_id"}
        )
    return request_id


async def run_once(
    conn: AsyncConnection,
    *,
    schema: str,
    subject: str,
    rpc: str,
    request: Message,
    response_type: type[M],
    action: Callable[[], Awaitable[M]],
    stored: Callable[[M], M] | None = None,
    request_id: str | None = None,
    content: bytes | None = None,
) -> M:
    """Run ``action`` once per (subject, request_id); ``stored`` may strip what must not be kept.

    ``request_id`` and ``content`` (extra bytes the fingerprint covers, e.g. an upload's hash)
    serve streaming calls whose request id travels in a header message.
    """
    request_id = check_request_id(request_id if request_id is not None else getattr(request, "request_id", ""))
    fp = fingerprint(request)
    if content is not None:
        fp = hashlib.sha256(fp + content).digest()
    claimed = await conn.execute(
        text(
            f"INSERT INTO {schema}.idempotency_keys (subject, request_id, rpc, fingerprint) "
            "VALUES (:s, :r, :rpc, :fp) ON CONFLICT DO NOTHING RETURNING 1"
        ),
        {"s": subject, "r": request_id, "rpc": rpc, "fp": fp},
    )
    if claimed.first() is None:
        row = (
            await conn.execute(
                text(
                    f"SELECT rpc, fingerprint, response FROM {schema}.idempotency_keys "
                    "WHERE subject = :s AND request_id = :r"
                ),
                {"s": subject, "r": request_id},
            )
        ).one()
        if row.rpc != rpc or bytes(row.fingerprint) != fp:
            raise AlreadyExists(
                f"request_id {request_id!r} was already used for a different {row.rpc} request; "
                "send a new request_id for a new request",
                reason="REQUEST_ID_REUSED",
                metadata={"request_id": request_id},
            )
        return response_type.FromString(bytes(row.response or b""))
    response = await action()
    kept = stored(response) if stored else response
    await conn.execute(
        text(f"UPDATE {schema}.idempotency_keys SET response = :resp WHERE subject = :s AND request_id = :r"),
        {"resp": kept.SerializeToString(), "s": subject, "r": request_id},
    )
    return response


async def once(database: Any, **arguments: Any) -> Any:
    """``run_once`` in a transaction of its own (for an api layer that holds no connection)."""
    async with database.transaction() as conn:
        return await run_once(conn, **arguments)
