"""The server interceptor: request id and access log, authentication, and error mapping.

Each RPC runs inside :meth:`RpcInterceptor._call`, which
1. binds ``rpc``, ``request_id`` (from ``x-request-id`` or new) and ``peer`` to every log line;
2. authenticates the API key and checks the access policy (UNAUTHENTICATED / PERMISSION_DENIED);
3. maps domain errors to their status codes with an ``ErrorInfo``, a down database to
   UNAVAILABLE, and anything unexpected to INTERNAL with a generic message (trace only in the log);
4. writes one access-log line with the status code and duration.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import grpc
import structlog

from shared.auth import key_from_metadata
from shared.db import is_unavailable
from shared.errors import DomainError, InvalidArgument, Unauthenticated
from shared.logging import get_logger
from shared.rpc.access import AccessPolicy
from shared.rpc.authn import Authenticator, client_source
from shared.rpc.context import current_principal, current_request_id
from shared.rpc.status import grpc_code, to_status

log = get_logger("crowdquant.rpc")
_MAX_REQUEST_ID = 128


def bad_data(exc: BaseException) -> str | None:
    """A caller-fixable message when the database refused a value (NUL in text, out of range)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current, asyncpg.exceptions.CharacterNotInRepertoireError | asyncpg.exceptions.UntranslatableCharacterError
        ):
            return "text fields must not contain NUL (\\x00) or other characters UTF-8 text can't hold"
        if isinstance(current, asyncpg.exceptions.DataError):
            return "a field holds a value out of range or of the wrong form for it; check the request's fields"
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return None


class RpcInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, policy: AccessPolicy, authenticator: Authenticator | None) -> None:
        self.policy = policy
        self.authenticator = authenticator

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary, method), **kwargs)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(self._unary(handler.stream_unary, method), **kwargs)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(self._stream(handler.unary_stream, method), **kwargs)
        return grpc.stream_stream_rpc_method_handler(self._stream(handler.stream_stream, method), **kwargs)

    def _unary(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with self._call(method, context):
                return await behavior(request, context)

        return wrapped

    def _stream(self, behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with self._call(method, context):
                async for item in behavior(request, context):
                    yield item

        return wrapped

    async def _authenticate(self, method: str, context: grpc.aio.ServicerContext) -> None:
        if method.startswith("/grpc."):
            return
        key = key_from_metadata(context.invocation_metadata())
        if key is None:
            if self.policy.is_public(method):
                return
            raise Unauthenticated(
                "missing API key: send metadata 'authorization: Bearer <key id>.<secret>'",
                reason="API_KEY_MISSING",
            )
        if self.authenticator is None:
            raise Unauthenticated("this server cannot check API keys", reason="NO_AUTHENTICATOR")
        principal = await self.authenticator.authenticate(key, client_source(context.peer() or ""))
        self.policy.check(method, principal)
        current_principal.set(principal)
        structlog.contextvars.bind_contextvars(key_id=principal.key_id, role=principal.identity)

    @asynccontextmanager
    async def _call(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        started = time.perf_counter()
        request_id = ""
        for name, value in context.invocation_metadata() or ():
            if name == "x-request-id" and isinstance(value, str):
                request_id = value[:_MAX_REQUEST_ID]
        request_id = request_id or uuid.uuid4().hex
        current_request_id.set(request_id)
        current_principal.set(None)
        structlog.contextvars.bind_contextvars(rpc=method, request_id=request_id, peer=context.peer())
        code = grpc.StatusCode.OK
        try:
            await self._authenticate(method, context)
            yield
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except DomainError as exc:
            code = grpc_code(exc)
            await self._abort(context, exc)
        except Exception as exc:
            if context.code() == grpc.StatusCode.UNIMPLEMENTED:
                code = grpc.StatusCode.UNIMPLEMENTED
                rpc = method.rsplit("/", 1)[-1]
                await self._abort(
                    context, DomainError(f"{rpc} is not available in this version"), code=grpc.StatusCode.UNIMPLEMENTED
                )
            if is_unavailable(exc):
                code = grpc.StatusCode.UNAVAILABLE
                log.warning("database unavailable", error=type(exc).__name__)
                await self._abort(
                    context,
                    DomainError("the database is unavailable; retry shortly", reason="DATABASE_UNAVAILABLE"),
                    code=grpc.StatusCode.UNAVAILABLE,
                )
            data_error = bad_data(exc)
            if data_error:
                code = grpc.StatusCode.INVALID_ARGUMENT
                await self._abort(context, InvalidArgument(data_error, reason="BAD_VALUE"))
            if isinstance(exc, UnicodeDecodeError | ValueError) and "parse" in str(exc).lower():
                code = grpc.StatusCode.INVALID_ARGUMENT
                await self._abort(context, InvalidArgument("request could not be parsed"))
            code = grpc.StatusCode.INTERNAL
            log.exception("unhandled error")
            await self._abort(
                context, DomainError(f"internal error; quote request id {request_id}"), code=grpc.StatusCode.INTERNAL
            )
        finally:
            level = log.debug if method.startswith("/grpc.") and code is grpc.StatusCode.OK else log.info
            level("rpc", code=code.name, duration_ms=round((time.perf_counter() - started) * 1000, 2))
            structlog.contextvars.unbind_contextvars("rpc", "request_id", "peer", "key_id", "role")

    @staticmethod
    async def _abort(context: grpc.aio.ServicerContext, exc: DomainError, code: grpc.StatusCode | None = None) -> None:
        own = grpc_code(exc)
        code = code or own
        status = to_status(code, exc.message, exc.reason if code == own else code.name, exc.metadata)
        await context.abort(status.code, status.details, trailing_metadata=status.trailing_metadata)
