"""Stakes: a model's stake is the balance of its ``staked`` ledger account, moved from ``available``.

A stake is *at risk* in every round of its tournament in which its model has a submission, until that
round's payout is settled: while the round is OPEN, CLOSED or RESOLVED, and SCORED until this service
has allocated it (the stake policy burns or pays on the stake as it stood during the round, and
scoring weights the meta model by it). While at risk in such a round the stake is locked: changing it
is FAILED_PRECONDITION naming the rounds. Because it cannot change while at risk, the stake read at
allocation time is the stake the round ran with.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from services.payouts import ledger
from services.payouts.domain import chart, ids
from services.payouts.peers import Peers
from services.payouts.store import allocations as alloc_repo
from services.payouts.store import ledger_views
from shared.errors import FailedPrecondition, InvalidArgument
from shared.money import require_satoshis

LOCKING_STATES = (
    sub_pb.Round.STATE_OPEN,
    sub_pb.Round.STATE_CLOSED,
    sub_pb.Round.STATE_RESOLVED,
    sub_pb.Round.STATE_SCORED,
)


@dataclass
class StakeView:
    model_id: str
    participant_id: str
    amount: int
    locking_rounds: list[common_pb2.RoundRef] = field(default_factory=list)
    update_time: datetime | None = None


class LockFinder:
    """Which unsettled rounds lock a model's stake; round listings are cached for one request."""

    def __init__(self, peers: Peers, conn_factory: Callable[[], AbstractAsyncContextManager[AsyncConnection]]) -> None:
        self.peers = peers
        self.conn_factory = conn_factory
        self._rounds: dict[str, list[sub_pb.Round]] = {}

    async def _unsettled(self, tournament_id: str) -> list[sub_pb.Round]:
        if tournament_id not in self._rounds:
            found: list[sub_pb.Round] = []
            for state in LOCKING_STATES:
                found += await self.peers.rounds(tournament_id, state)
            scored = [r for r in found if r.state == sub_pb.Round.STATE_SCORED]
            allocated: set[int] = set()
            if scored:
                async with self.conn_factory() as conn:
                    for rnd in scored:
                        if await alloc_repo.for_round(conn, tournament_id, rnd.round.round_number):
                            allocated.add(rnd.round.round_number)
            self._rounds[tournament_id] = [r for r in found if r.round.round_number not in allocated]
        return self._rounds[tournament_id]

    async def locking(self, tournament_id: str, model_id: str) -> list[common_pb2.RoundRef]:
        refs = []
        for rnd in sorted(await self._unsettled(tournament_id), key=lambda r: r.round.round_number):
            if await self.peers.has_submission(rnd.round, model_id):
                refs.append(rnd.round)
        return refs


def _names(refs: list[common_pb2.RoundRef]) -> str:
    return ", ".join(f"{r.tournament_id} round {r.round_number}" for r in refs)


def check_amount(amount: int) -> int:
    return require_satoshis(amount, "amount_satoshis")


async def _lock_model(conn: AsyncConnection, model_id: str) -> None:
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": f"payouts-stake:{model_id}"}
    )


async def set_stake(
    conn: AsyncConnection, *, subject: str, request_id: str, model: sub_pb.Model, amount: int
) -> StakeView:
    """Move the difference between the new stake and the current one (checked locks first, by the caller)."""
    participant_id, model_id = chart.require_id(model.participant_id, "participant_id"), model.model_id
    chart.require_id(model_id, "model_id")
    await _lock_model(conn, model_id)
    await ledger.open_accounts(
        conn,
        [*chart.platform_specs(), *chart.participant_specs(participant_id, {model_id: model.tournament_id})],
    )
    stake_code, available_code = chart.staked(participant_id, model_id), chart.available(participant_id)
    found = await ledger_views.balances(conn, [stake_code, available_code])
    current, available = -found.get(stake_code, 0), -found.get(available_code, 0)
    delta = amount - current
    if delta > available:
        raise InvalidArgument(
            f"a stake of {amount} sat on model {model_id} needs {delta} sat more than its current "
            f"{current} sat, but participant {participant_id} has {available} sat available: short by "
            f"{delta - available} sat. "
            "Deposit more or stake less.",
            reason="STAKE_ABOVE_BALANCE",
            metadata={
                "field": "amount_satoshis",
                "shortfall": str(delta - available),
                "available": str(available),
            },
        )
    if delta:
        debit, credit = (available_code, stake_code) if delta > 0 else (stake_code, available_code)
        await ledger.post_entry(
            conn,
            ledger.transfer(
                ids.stake_entry(subject, request_id),
                "stake",
                debit=debit,
                credit=credit,
                amount=abs(delta),
                memo=f"stake of model {model_id} set to {amount} sat",
                metadata={"model_id": model_id, "participant_id": participant_id, "stake": str(amount)},
            ),
        )
    return StakeView(model_id, participant_id, amount, update_time=await ledger_views.last_change(conn, stake_code))


async def refuse_if_locked(locks: LockFinder, model: sub_pb.Model, amount: int, current: int) -> None:
    if amount == current:
        return
    refs = await locks.locking(model.tournament_id, model.model_id)
    if refs:
        raise FailedPrecondition(
            f"the stake of model {model.model_id} is locked while it is at risk in {_names(refs)}; it can "
            "change "
            "once those rounds are resolved and their payouts allocated",
            reason="STAKE_LOCKED",
            metadata={"model_id": model.model_id},
        )


async def current_stake(conn: AsyncConnection, participant_id: str, model_id: str) -> tuple[int, datetime | None]:
    code = chart.staked(participant_id, model_id)
    amount = -(await ledger_views.balances(conn, [code])).get(code, 0)
    return amount, await ledger_views.last_change(conn, code)


async def round_stakes(conn: AsyncConnection, peers: Peers, ref: common_pb2.RoundRef) -> list[tuple[str, str, int]]:
    """(model, participant, stake) of the models with a positive stake at risk in the round, by model id.

    Once the round is allocated the stakes recorded on its allocation lines are the answer (the stake
    may change after that); before, the current stakes of the models that submitted (locked meanwhile).
    """
    allocated = await alloc_repo.for_round(conn, ref.tournament_id, ref.round_number)
    if allocated:
        rows = await alloc_repo.lines(conn, allocated[0].allocation_id)
        return sorted((r.model_id, r.participant_id, int(r.stake)) for r in rows if r.stake > 0)
    submitted = await peers.latest_submissions(ref)
    codes = {chart.staked(s.participant_id, m): (m, s.participant_id) for m, s in submitted.items()}
    found = await ledger_views.balances(conn, list(codes))
    return sorted((m, p, -found[c]) for c, (m, p) in codes.items() if -found.get(c, 0) > 0)
