"""Calling another service: one channel per peer, the service's own key, deadlines and retries.

A service reaches another only through the peer's generated stub; these helpers add what every
such call needs. Retries cover UNAVAILABLE and DEADLINE_EXCEEDED only, with jittered backoff, and
reuse the caller's request (and so its request id) so a retried mutation stays idempotent.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import grpc

from shared.rpc.context import current_request_id
from shared.rpc.status import from_rpc_error

T = TypeVar("T")
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# A restarted peer is reached again within 2 s: gRPC's default reconnect back-off grows to 120 s, and
# while it waits every call fails at once with UNAVAILABLE, however often the caller retries.
RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.keepalive_time_ms", 60_000),
    *RECONNECT_OPTIONS,
]


_default_credentials: grpc.ChannelCredentials | None = None


def use_tls(ca_file: Path | None) -> None:
    """Make every channel this process opens verify its peer against ``ca_file`` (None: plaintext)."""
    global _default_credentials
    _default_credentials = grpc.ssl_channel_credentials(ca_file.read_bytes()) if ca_file else None


def open_channel(address: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.aio.Channel:
    credentials = credentials or _default_credentials
    if credentials is not None:
        return grpc.aio.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
    return grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS)


def call_metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    """Metadata of an outgoing call: the key (if any) and the current request id, for tracing."""
    metadata: list[tuple[str, str]] = []
    if api_key:
        metadata.append(("authorization", f"Bearer {api_key}"))
    request_id = current_request_id.get()
    if request_id:
        metadata.append(("x-request-id", request_id))
    return tuple(metadata)


async def call_with_retry(
    fn: Callable[..., Awaitable[T]],
    request: Any,
    *,
    api_key: str | None,
    deadline: float,
    attempts: int = 4,
    base_delay: float = 0.2,
    raise_domain: bool = True,
) -> T:
    """Call a unary RPC with a deadline, retrying transient failures; map errors to domain errors."""
    for attempt in range(attempts):
        try:
            return await fn(request, timeout=deadline, metadata=call_metadata(api_key))
        except grpc.aio.AioRpcError as exc:
            if exc.code() in RETRYABLE and attempt + 1 < attempts:
                await asyncio.sleep(base_delay * (2**attempt) * (0.5 + random.random()))
                continue
            if raise_domain:
                raise from_rpc_error(exc) from exc
            raise
    raise AssertionError("unreachable")
