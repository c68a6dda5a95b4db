"""The auditors' reads of the ledger, each in a transaction of its own; nothing here writes.

The ledger reads through the caller's transaction, and the CSV export streams through a server-side
cursor, which needs one: so every read opens its unit of work here, never in the API layer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from services.payouts import ledger
from services.payouts.domain import chart
from services.payouts.ledger.records import (
    Account,
    Balance,
    ChainHead,
    ChainReport,
    Entry,
    Page,
    Statement,
    TrialBalance,
)
from services.payouts.store.uow import unit_of_work
from shared.db import Database


class LedgerAudit:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def accounts(
        self,
        *,
        account_type: ledger.AccountType | None,
        owner: str,
        code_prefix: str,
        page_size: int,
        page_token: str,
    ) -> Page[Account]:
        async with unit_of_work(self.db) as conn:
            return await ledger.list_accounts(
                conn,
                account_type=account_type,
                owner=owner,
                code_prefix=code_prefix,
                page_size=page_size,
                page_token=page_token,
            )

    async def balance(self, account_code: str, *, as_of: datetime | None, basis: ledger.TimeBasis) -> Balance:
        async with unit_of_work(self.db) as conn:
            return await ledger.get_balance(conn, account_code, as_of=as_of, basis=basis)

    async def entries(self, flt: ledger.EntryFilter, *, page_size: int, page_token: str) -> Page[Entry]:
        async with unit_of_work(self.db) as conn:
            return await ledger.list_entries(conn, flt, page_size=page_size, page_token=page_token)

    async def entry(self, entry_id: str) -> Entry:
        async with unit_of_work(self.db) as conn:
            return await ledger.get_entry(conn, entry_id)

    async def trial_balance(self, *, as_of: datetime | None, basis: ledger.TimeBasis) -> TrialBalance:
        async with unit_of_work(self.db) as conn:
            return await ledger.trial_balance(conn, as_of=as_of, basis=basis)

    async def verify_chain(self) -> ChainReport:
        async with unit_of_work(self.db) as conn:
            return await ledger.verify_chain(conn)

    async def chain_head(self) -> ChainHead:
        async with unit_of_work(self.db) as conn:
            return await ledger.chain_head(conn)

    async def statement(
        self, participant_id: str, *, start: datetime | None, end: datetime | None, basis: ledger.TimeBasis
    ) -> Statement:
        """The statement of every account the participant owns."""
        async with unit_of_work(self.db) as conn:
            return await ledger.statement(conn, chart.owner(participant_id), start=start, end=end, basis=basis)

    async def export_csv(self, flt: ledger.EntryFilter) -> AsyncIterator[str]:
        async with unit_of_work(self.db) as conn:
            async for chunk in ledger.export_entries_csv(conn, flt):
                yield chunk
