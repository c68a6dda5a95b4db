"""Deposits and a participant's balances.

A deposit credits the participant's ``available`` account against ``platform:deposits`` (the custody
asset): money the participant may then stake. Its entry id is derived from the request, so a retried
deposit is the same entry, never a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.payouts import faults, ledger
from services.payouts.domain import chart, ids
from services.payouts.peers import Peers
from services.payouts.store.uow import unit_of_work
from services.payouts.usecases.once import Once
from shared.db import Database
from shared.errors import InvalidArgument, NotFound
from shared.money import require_satoshis

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class Balances:
    participant_id: str
    available: int
    staked: int
    payable: int
    pending: int


async def balances(conn: AsyncConnection, participant_id: str) -> Balances:
    """What the platform owes the participant, per purpose (credit balances shown as positive amounts)."""
    available = (await ledger.balances_of(conn, [chart.available(participant_id)])).get(
        chart.available(participant_id), 0
    )
    sums = {
        kind: sum(a.amount for a in await ledger.owed(conn, kind, participant_id))
        for kind in ("staked", "payable", "pending")
    }
    return Balances(participant_id, -available, sums["staked"], sums["payable"], sums["pending"])


async def check_deposit(peers: Peers, participant_id: str, amount: int, memo: str) -> None:
    """Refuse a bad deposit before any transaction is opened (the participant must exist in submissions)."""
    chart.require_id(participant_id, "participant_id")
    require_satoshis(amount, "amount_satoshis", allow_zero=False)
    if len(memo) > 500:
        raise InvalidArgument("memo is longer than 500 characters", metadata={"field": "memo"})
    if not await peers.participant_exists(participant_id):
        raise NotFound(f"participant {participant_id!r} does not exist", metadata={"participant_id": participant_id})


async def record_deposit(
    conn: AsyncConnection, *, subject: str, request_id: str, participant_id: str, amount: int, memo: str
) -> tuple[str, Balances]:
    """Book a checked deposit inside the caller's transaction (the idempotency record commits with it)."""
    await ledger.open_accounts(conn, [*chart.platform_specs(), *chart.participant_specs(participant_id)])
    entry_id = ids.deposit_entry(subject, request_id)
    await ledger.post_entry(
        conn,
        ledger.transfer(
            entry_id,
            "deposit",
            debit=chart.DEPOSITS,
            credit=chart.available(participant_id),
            amount=amount,
            memo=memo,
            metadata={"participant_id": participant_id, "request_id": request_id},
        ),
    )
    return str(entry_id), await balances(conn, participant_id)


async def deposit(
    database: Database,
    peers: Peers,
    *,
    subject: str,
    request_id: str,
    participant_id: str,
    amount: int,
    memo: str,
    once: Once,
) -> Any:
    """Check the deposit, then book it once per request (the action answers the entry id and balances)."""
    await check_deposit(peers, participant_id, amount, memo)
    async with unit_of_work(database) as conn:

        async def action() -> tuple[str, Balances]:
            return await record_deposit(
                conn, subject=subject, request_id=request_id, participant_id=participant_id, amount=amount, memo=memo
            )

        response = await once(conn, action)
    faults.reach("deposit.recorded")
    return response


async def participant_balances(database: Database, participant_id: str) -> Balances:
    chart.require_id(participant_id, "participant_id")
    async with unit_of_work(database) as conn:
        return await balances(conn, participant_id)
