"""Per-request context: who is calling and under which request id."""

from __future__ import annotations

from contextvars import ContextVar

from shared.auth import Principal, Role
from shared.errors import PermissionDenied, Unauthenticated

current_principal: ContextVar[Principal | None] = ContextVar("current_principal", default=None)
current_request_id: ContextVar[str] = ContextVar("current_request_id", default="")


def principal() -> Principal:
    """The authenticated caller; the access policy guarantees one for non-public RPCs."""
    who = current_principal.get()
    if who is None:
        raise Unauthenticated("this call needs an API key: send 'authorization: Bearer <key id>.<secret>'")
    return who


def optional_principal() -> Principal | None:
    return current_principal.get()


def require_participant(participant_id: str, *, what: str) -> None:
    """Participants act only on their own resources; operators and services on any."""
    who = principal()
    if who.role is Role.PARTICIPANT and who.participant_id != participant_id:
        raise PermissionDenied(f"{what} belongs to another participant")
