"""Balances now and as of any time, the trial balance, and an owner's statement.

Current balances come from ``ledger_balances``, kept by the postings trigger in the writing
transaction, so reading one is a primary-key lookup. A balance as of a time is the sum of the
account's postings up to it, read from the covering index (account_id, effective_at | recorded_at)
INCLUDE (amount): an index-only range scan, with no snapshot tables to keep in step. An account
without postings there simply sums to zero.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.payouts.ledger.domain import AccountType, TimeBasis, require_code, require_time
from services.payouts.ledger.pg import driver
from services.payouts.ledger.records import (
    AccountStatement,
    Balance,
    Statement,
    StatementLine,
    TrialBalance,
    TrialBalanceLine,
)
from shared.errors import InvalidArgument, NotFound


def time_column(basis: TimeBasis | str) -> str:
    """The column a basis reads; a fixed whitelist, so it can be put into SQL text."""
    try:
        return {TimeBasis.EFFECTIVE: "effective_at", TimeBasis.RECORDED: "recorded_at"}[TimeBasis(basis)]
    except ValueError as exc:
        raise InvalidArgument(
            f"time basis {basis!r} is not 'effective' or 'recorded'", metadata={"field": "time_basis"}
        ) from exc


async def _account_id(connection: Any, code: str) -> int:
    account_id = await connection.fetchval("SELECT id FROM payouts.ledger_accounts WHERE code = $1", code)
    if account_id is None:
        raise NotFound(f"account {code} does not exist", metadata={"account_code": code})
    return int(account_id)


async def get_balance(
    conn: AsyncConnection,
    account_code: str,
    *,
    as_of: datetime | None = None,
    basis: TimeBasis = TimeBasis.EFFECTIVE,
) -> Balance:
    """The account's balance now (``as_of`` None) or as of a time, on the effective or recorded clock."""
    code = require_code(account_code, "account_code")
    column = time_column(basis)
    connection = await driver(conn)
    account_id = await _account_id(connection, code)
    if as_of is None:
        row = await connection.fetchrow(
            """
            SELECT b.balance, b.posting_count, clock_timestamp() AS as_of,
                   (SELECT coalesce(sum(p.amount), 0)::bigint
                      FROM payouts.ledger_pending pd
                      JOIN payouts.ledger_postings p ON p.entry_id = pd.reserve_entry_id AND p.account_id = $1
                     WHERE pd.state = 'PENDING') AS pending
              FROM payouts.ledger_balances b WHERE b.account_id = $1
            """,
            account_id,
        )
        return Balance(code, row["as_of"], TimeBasis(basis), row["balance"], row["pending"], row["posting_count"])
    moment = require_time(as_of, "as_of")
    row = await connection.fetchrow(
        f"""
        SELECT coalesce(sum(amount), 0)::bigint AS balance, count(*) AS postings
          FROM payouts.ledger_postings WHERE account_id = $1 AND {column} <= $2
        """,
        account_id,
        moment,
    )
    pending = await connection.fetchval(
        f"""
        SELECT coalesce(sum(p.amount), 0)::bigint
          FROM payouts.ledger_pending pd
          JOIN payouts.ledger_postings p ON p.entry_id = pd.reserve_entry_id AND p.account_id = $1
          LEFT JOIN payouts.ledger_entries s ON s.id = pd.resolved_by
         WHERE (pd.debit_account_id = $1 OR pd.holding_account_id = $1)
           AND p.{column} <= $2 AND (s.id IS NULL OR s.{column} > $2)
        """,
        account_id,
        moment,
    )
    return Balance(code, moment, TimeBasis(basis), row["balance"], pending, row["postings"])


async def trial_balance(
    conn: AsyncConnection, *, as_of: datetime | None = None, basis: TimeBasis = TimeBasis.EFFECTIVE
) -> TrialBalance:
    """Every account's debits, credits and balance as of a time (default now); debits equal credits."""
    column = time_column(basis)
    moment = require_time(as_of, "as_of") if as_of is not None else None
    connection = await driver(conn)
    rows = await connection.fetch(
        f"""
        WITH sums AS (
            SELECT account_id,
                   coalesce(sum(amount) FILTER (WHERE amount > 0), 0)::bigint AS debit,
                   coalesce(-sum(amount) FILTER (WHERE amount < 0), 0)::bigint AS credit
              FROM payouts.ledger_postings
             WHERE $1::timestamptz IS NULL OR {column} <= $1
             GROUP BY account_id
        )
        SELECT a.code, a.type, coalesce(s.debit, 0) AS debit, coalesce(s.credit, 0) AS credit,
               clock_timestamp() AS now
          FROM payouts.ledger_accounts a LEFT JOIN sums s ON s.account_id = a.id
         ORDER BY a.code
        """,
        moment,
    )
    lines = [
        TrialBalanceLine(r["code"], AccountType(r["type"]), r["debit"], r["credit"], r["debit"] - r["credit"])
        for r in rows
    ]
    when = moment or (rows[0]["now"] if rows else await connection.fetchval("SELECT clock_timestamp()"))
    return TrialBalance(
        when, TimeBasis(basis), lines, sum(line.debit for line in lines), sum(line.credit for line in lines)
    )


async def statement(
    conn: AsyncConnection,
    owner: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    basis: TimeBasis = TimeBasis.EFFECTIVE,
) -> Statement:
    """Each account of ``owner`` (e.g. ``participants/{id}``) over [start, end): opening, lines, closing.

    Lines are in time order (ties in chain order) with the running balance after each.
    """
    column = time_column(basis)
    start = require_time(start, "start_time") if start is not None else None
    connection = await driver(conn)
    end = require_time(end, "end_time") if end is not None else await connection.fetchval("SELECT clock_timestamp()")
    if start is not None and start >= end:
        raise InvalidArgument("start_time must be before end_time", metadata={"field": "start_time"})
    accounts = await connection.fetch(
        f"""
        SELECT a.id, a.code, a.type,
               (SELECT coalesce(sum(p.amount), 0)::bigint FROM payouts.ledger_postings p
                 WHERE p.account_id = a.id AND $2::timestamptz IS NOT NULL AND p.{column} < $2) AS opening
          FROM payouts.ledger_accounts a WHERE a.owner = $1 ORDER BY a.code
        """,
        owner,
        start,
    )
    lines = await connection.fetch(
        f"""
        SELECT p.account_id, e.id, e.kind, e.memo, e.effective_at, e.recorded_at, p.amount
          FROM payouts.ledger_postings p
          JOIN payouts.ledger_entries e ON e.id = p.entry_id
          LEFT JOIN payouts.ledger_chain c ON c.entry_id = e.id
         WHERE p.account_id = ANY($1::bigint[])
           AND ($2::timestamptz IS NULL OR p.{column} >= $2) AND p.{column} < $3
         ORDER BY p.account_id, p.{column}, c.seq
        """,
        [a["id"] for a in accounts],
        start,
        end,
    )
    by_account: dict[int, list[Any]] = {}
    for line in lines:
        by_account.setdefault(line["account_id"], []).append(line)
    result = []
    for account in accounts:
        running = account["opening"]
        items = []
        for line in by_account.get(account["id"], []):
            running += line["amount"]
            items.append(
                StatementLine(
                    line["id"],
                    line["kind"],
                    line["memo"],
                    line["effective_at"],
                    line["recorded_at"],
                    line["amount"],
                    running,
                )
            )
        result.append(
            AccountStatement(account["code"], AccountType(account["type"]), account["opening"], items, running)
        )
    return Statement(owner, start, end, TimeBasis(basis), result)
