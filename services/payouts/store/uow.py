"""The unit of work of the payouts service: one database transaction, ledger refusals as domain errors.

The ledger checks part of its rules at COMMIT (entries balance, the hash chain is appended), so an
error can surface when the transaction ends rather than at the statement; both are mapped here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from services.payouts.ledger import translate_error
from shared.db import Database
from shared.errors import DomainError


@asynccontextmanager
async def unit_of_work(database: Database) -> AsyncIterator[AsyncConnection]:
    try:
        async with database.transaction() as conn:
            yield conn
    except DomainError:
        raise
    except Exception as exc:
        mapped = translate_error(exc)
        if mapped is exc:
            raise
        raise mapped from exc
