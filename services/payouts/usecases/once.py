"""The idempotency claim a mutating use case runs its action under, supplied by the API layer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


class Once(Protocol):
    """Runs ``action`` at most once per request inside the use case's transaction ``conn``.

    The claim commits with whatever the action writes. A first call returns what the API layer made
    of the action's result (and recorded); a repeat returns that record without running the action.
    """

    async def __call__(self, conn: AsyncConnection, action: Callable[[], Awaitable[Any]]) -> Any: ...
