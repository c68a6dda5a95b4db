"""Domain errors, free of any transport.

Domain code raises these. Each names its status (``code``, the name of a ``google.rpc.Code``); the rpc
layer (``shared.rpc.status``) turns one into a gRPC status with the message (which must tell the caller
what to fix) and a ``google.rpc.ErrorInfo`` carrying ``reason``.
"""

from __future__ import annotations

from typing import ClassVar

ERROR_DOMAIN = "crowdquant"


class DomainError(Exception):
    """Base of every error a caller can fix or must know about."""

    code: ClassVar[str] = "INTERNAL"
    default_reason: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = {k: str(v) for k, v in (metadata or {}).items()}

    def __str__(self) -> str:
        return self.message


class InvalidArgument(DomainError):
    code = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"


class NotFound(DomainError):
    code = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    code = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    code = "ABORTED"
    default_reason = "ABORTED"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"


class ResourceExhausted(DomainError):
    code = "RESOURCE_EXHAUSTED"
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    code = "UNAVAILABLE"
    default_reason = "UNAVAILABLE"


class DeadlineExceeded(DomainError):
    code = "DEADLINE_EXCEEDED"
    default_reason = "DEADLINE_EXCEEDED"
