"""Stakes as the ledger keeps them: each model's ``staked`` account, moved to and from ``available``.

The one place the stake use cases reach the database: the per-model lock, the ledger reads and writes
of stake accounts, and whether a round is already allocated (then its stakes are settled).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.payouts import ledger
from services.payouts.store import allocations as alloc_repo


class StakeStore:
    async def lock_model(self, conn: AsyncConnection, model_id: str) -> None:
        """Serialise stake changes of one model until the transaction ends."""
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"payouts-stake:{model_id}"}
        )

    async def balances(self, conn: AsyncConnection, codes: Sequence[str]) -> dict[str, int]:
        return await ledger.balances_of(conn, codes)

    async def last_change(self, conn: AsyncConnection, code: str) -> datetime | None:
        return await ledger.last_change(conn, code)

    async def open_accounts(self, conn: AsyncConnection, specs: Sequence[ledger.AccountSpec]) -> None:
        await ledger.open_accounts(conn, list(specs))

    async def post(self, conn: AsyncConnection, entry: ledger.EntrySpec) -> None:
        await ledger.post_entry(conn, entry)

    async def accounts(
        self, conn: AsyncConnection, participant_id: str | None, after: str | None, limit: int
    ) -> list[ledger.ModelAccount]:
        return await ledger.model_accounts(conn, "staked", participant_id, after, limit)

    async def allocated(self, conn: AsyncConnection, tournament_id: str, round_number: int) -> bool:
        return bool(await alloc_repo.for_round(conn, tournament_id, round_number))

    async def allocated_lines(self, conn: AsyncConnection, tournament_id: str, round_number: int) -> list[Any] | None:
        """The lines of the round's first allocation, or None while it has none."""
        allocated = await alloc_repo.for_round(conn, tournament_id, round_number)
        if not allocated:
            return None
        return await alloc_repo.lines(conn, allocated[0].allocation_id)
