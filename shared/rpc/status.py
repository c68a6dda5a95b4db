"""Domain errors to gRPC statuses with ``google.rpc.ErrorInfo`` details, and back (for clients)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from shared import errors


def grpc_code(error: errors.DomainError) -> grpc.StatusCode:
    """The gRPC status code of a domain error."""
    return grpc.StatusCode[error.code]


_BY_CODE: dict[grpc.StatusCode, type[errors.DomainError]] = {
    grpc.StatusCode[cls.code]: cls
    for cls in (
        errors.InvalidArgument,
        errors.NotFound,
        errors.AlreadyExists,
        errors.FailedPrecondition,
        errors.Aborted,
        errors.Unauthenticated,
        errors.PermissionDenied,
        errors.ResourceExhausted,
        errors.Unavailable,
    )
}


def to_status(code: grpc.StatusCode, message: str, reason: str, metadata: dict[str, str] | None = None) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=errors.ERROR_DOMAIN, metadata=metadata or {})
    detail = any_pb2.Any()
    detail.Pack(info)
    proto = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return rpc_status.to_status(proto)


def error_info(error: grpc.aio.AioRpcError | grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo a crowdquant server attached to a failed call, if any."""
    try:
        status = rpc_status.from_call(error)
    except (AttributeError, ValueError):
        status = None
    if status is None:
        metadata = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
        for key, value in metadata or ():
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def from_rpc_error(error: grpc.RpcError) -> errors.DomainError:
    """Turn a peer's status back into the matching domain error (for inter-service calls)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    cls = _BY_CODE.get(code)
    if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        cls = errors.Unavailable
    if cls is None:
        return errors.DomainError(f"peer failed: {message}")
    info = error_info(error)
    return cls(
        message or code.name, reason=info.reason if info else None, metadata=dict(info.metadata) if info else None
    )


__all__ = ["code_pb2", "error_info", "from_rpc_error", "grpc_code", "to_status"]
