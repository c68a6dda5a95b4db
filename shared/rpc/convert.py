"""Conversions between proto messages and Python values used by every service."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from crowdquant.common.v1 import common_pb2
from shared.auth import Role
from shared.errors import InvalidArgument

_ROLE_TO_PROTO = {
    Role.PARTICIPANT: common_pb2.ROLE_PARTICIPANT,
    Role.OPERATOR: common_pb2.ROLE_OPERATOR,
    Role.AUDITOR: common_pb2.ROLE_AUDITOR,
    Role.SERVICE: common_pb2.ROLE_SERVICE,
}
_ROLE_FROM_PROTO: dict[int, Role] = {v: k for k, v in _ROLE_TO_PROTO.items()}


def role_to_proto(role: Role) -> int:
    return _ROLE_TO_PROTO[role]


def role_from_proto(value: int, field: str = "role") -> Role:
    try:
        return _ROLE_FROM_PROTO[value]
    except KeyError:
        raise InvalidArgument(
            f"{field}: choose one of ROLE_PARTICIPANT, ROLE_OPERATOR, ROLE_AUDITOR, ROLE_SERVICE",
            metadata={"field": field},
        ) from None


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


def from_timestamp(ts: Timestamp, field: str) -> datetime | None:
    """A set Timestamp as an aware datetime; an unset one as None."""
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    if not 0 <= ts.nanos < 1_000_000_000:
        raise InvalidArgument(f"{field}: nanos out of range", metadata={"field": field})
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument(f"{field}: timestamp out of range", metadata={"field": field}) from exc
