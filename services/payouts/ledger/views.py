"""Bulk reads of the ledger for payouts: many balances at once, per-model accounts, entries already written.

The rest of the ledger answers one account at a time; a batch planner needs every payable balance at
once, a stake listing needs pages of stake accounts, funding needs to know which coins are booked.
Per-model accounts are the participant accounts coded ``participant:{participant}:{kind}:{model}``.
Plain SELECTs on the ledger's tables (which the application role may read), never writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_PER_MODEL = """a.code LIKE 'participant:%' AND split_part(a.code, ':', 3) = :kind
                AND (CAST(:p AS text) IS NULL OR split_part(a.code, ':', 2) = :p)"""


@dataclass(frozen=True)
class ModelAccount:
    """A per-model participant account and what the platform owes on it (the negated credit balance)."""

    code: str
    participant_id: str
    model_id: str
    amount: int
    tournament_id: str = ""
    created_at: datetime | None = None


def _account(row: Any) -> ModelAccount:
    _, participant_id, _, model_id = row.code.split(":", 3)
    return ModelAccount(row.code, participant_id, model_id, int(row.amount), row.tournament_id or "", row.created_at)


# Per-model accounts of one kind (optionally one participant's) with their balance, for ModelAccount.
_MODEL_ACCOUNTS = f"""SELECT a.code, -b.balance AS amount, a.metadata->>'tournament_id' AS tournament_id,
                   a.created_at
              FROM payouts.ledger_accounts a
              JOIN payouts.ledger_balances b ON b.account_id = a.id
             WHERE {_PER_MODEL}"""


async def owed(conn: AsyncConnection, kind: str, participant_id: str | None = None) -> list[ModelAccount]:
    """Accounts of ``kind`` ('payable', 'staked', 'pending') with a non-zero balance, by code."""
    rows = (
        await conn.execute(
            text(f"""{_MODEL_ACCOUNTS} AND b.balance <> 0 ORDER BY a.code"""),
            {"kind": kind, "p": participant_id},
        )
    ).all()
    return [_account(row) for row in rows]


async def balances_of(conn: AsyncConnection, codes: Sequence[str]) -> dict[str, int]:
    """Current balances (debits - credits) of the given accounts; missing accounts are left out."""
    rows = (
        await conn.execute(
            text(
                """SELECT a.code, b.balance FROM payouts.ledger_accounts a JOIN payouts.ledger_balances b
             ON b.account_id = a.id WHERE a.code = ANY(:c)"""
            ),
            {"c": list(codes)},
        )
    ).all()
    return {row.code: int(row.balance) for row in rows}


async def model_accounts(
    conn: AsyncConnection, kind: str, participant_id: str | None, after: str | None, limit: int
) -> list[ModelAccount]:
    """Accounts of ``kind`` (any balance, optionally one participant's), ordered by code, keyset after ``after``."""
    rows = (
        await conn.execute(
            text(
                f"""{_MODEL_ACCOUNTS} AND (CAST(:after AS text) IS NULL OR a.code > :after)
             ORDER BY a.code LIMIT :lim"""
            ),
            {"kind": kind, "p": participant_id, "after": after, "lim": limit},
        )
    ).all()
    return [_account(row) for row in rows]


async def last_change(conn: AsyncConnection, code: str) -> datetime | None:
    """When an account last moved (a stake's update time)."""
    return (
        await conn.execute(
            text(
                """SELECT max(p.recorded_at) FROM payouts.ledger_postings p
             JOIN payouts.ledger_accounts a ON a.id = p.account_id WHERE a.code = :c"""
            ),
            {"c": code},
        )
    ).scalar()


async def written_entries(conn: AsyncConnection, entry_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of the given entry ids the ledger already holds."""
    rows = (
        await conn.execute(text("SELECT id FROM payouts.ledger_entries WHERE id = ANY(:ids)"), {"ids": list(entry_ids)})
    ).all()
    return {row.id for row in rows}
