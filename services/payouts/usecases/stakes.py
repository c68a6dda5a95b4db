"""Stakes: a model's stake is the balance of its ``staked`` ledger account, moved from ``available``.

A stake is *at risk* in every round of its tournament in which its model has a submission, until that
round's payout is settled: while the round is OPEN, CLOSED or RESOLVED, and SCORED until this service
has allocated it (the stake policy burns or pays on the stake as it stood during the round, and
scoring weights the meta model by it). While at risk in such a round the stake is locked: changing it
is FAILED_PRECONDITION naming the rounds. Because it cannot change while at risk, the stake read at
allocation time is the stake the round ran with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.payouts import faults, ledger
from services.payouts.domain import chart, ids
from services.payouts.domain.tournaments import ModelInfo, RoundInfo, RoundRef
from services.payouts.peers import Peers
from services.payouts.store.stakes import StakeStore
from services.payouts.store.uow import unit_of_work
from services.payouts.usecases.once import Once
from shared.db import Database
from shared.errors import FailedPrecondition, InvalidArgument
from shared.money import require_satoshis

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

LOCKING_STATES = ("OPEN", "CLOSED", "RESOLVED", "SCORED")


@dataclass
class StakeView:
    model_id: str
    participant_id: str
    amount: int
    locking_rounds: list[RoundRef] = field(default_factory=list)
    update_time: datetime | None = None


@dataclass
class StakePage:
    stakes: list[StakeView]
    last_code: str | None  # the account code to continue after, when there are more


class LockFinder:
    """Which unsettled rounds lock a model's stake; round listings are cached for one request."""

    def __init__(self, peers: Peers, database: Database, store: StakeStore) -> None:
        self.peers = peers
        self.db = database
        self.store = store
        self._rounds: dict[str, list[RoundInfo]] = {}

    async def _unsettled(self, tournament_id: str) -> list[RoundInfo]:
        if tournament_id not in self._rounds:
            found: list[RoundInfo] = []
            for state in LOCKING_STATES:
                found += await self.peers.rounds(tournament_id, state)
            scored = [r for r in found if r.state == "SCORED"]
            allocated: set[int] = set()
            if scored:
                async with self.db.connect() as conn:
                    for rnd in scored:
                        if await self.store.allocated(conn, tournament_id, rnd.ref.round_number):
                            allocated.add(rnd.ref.round_number)
            self._rounds[tournament_id] = [r for r in found if r.ref.round_number not in allocated]
        return self._rounds[tournament_id]

    async def locking(self, tournament_id: str, model_id: str) -> list[RoundRef]:
        refs = []
        for rnd in sorted(await self._unsettled(tournament_id), key=lambda r: r.ref.round_number):
            if await self.peers.has_submission(rnd.ref, model_id):
                refs.append(rnd.ref)
        return refs


def _names(refs: list[RoundRef]) -> str:
    return ", ".join(f"{r.tournament_id} round {r.round_number}" for r in refs)


def check_amount(amount: int) -> int:
    return require_satoshis(amount, "amount_satoshis")


class Stakes:
    """Setting and reading stakes: the ledger moves, the round locks from submissions."""

    def __init__(self, database: Database, peers: Peers, store: StakeStore | None = None) -> None:
        self.db = database
        self.peers = peers
        self.store = store or StakeStore()

    def locks(self) -> LockFinder:
        return LockFinder(self.peers, self.db, self.store)

    async def set_stake(self, *, subject: str, request_id: str, model: ModelInfo, amount: int, once: Once) -> Any:
        """Set the model's stake (its owner already checked): amount, locks, then the move, once per request."""
        amount = check_amount(amount)
        current, _ = await self.current(model.participant_id, model.model_id)
        await self.refuse_if_locked(self.locks(), model, amount, current)
        async with unit_of_work(self.db) as conn:

            async def action() -> StakeView:
                return await self._move(conn, subject=subject, request_id=request_id, model=model, amount=amount)

            result = await once(conn, action)
        faults.reach("stake.set")
        return result

    async def _move(
        self, conn: AsyncConnection, *, subject: str, request_id: str, model: ModelInfo, amount: int
    ) -> StakeView:
        """Move the difference between the new stake and the current one (locks checked first)."""
        participant_id, model_id = chart.require_id(model.participant_id, "participant_id"), model.model_id
        chart.require_id(model_id, "model_id")
        await self.store.lock_model(conn, model_id)
        await self.store.open_accounts(
            conn,
            [*chart.platform_specs(), *chart.participant_specs(participant_id, {model_id: model.tournament_id})],
        )
        stake_code, available_code = chart.staked(participant_id, model_id), chart.available(participant_id)
        found = await self.store.balances(conn, [stake_code, available_code])
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
            await self.store.post(
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
        return StakeView(model_id, participant_id, amount, update_time=await self.store.last_change(conn, stake_code))

    async def refuse_if_locked(self, locks: LockFinder, model: ModelInfo, amount: int, current: int) -> None:
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

    async def current(self, participant_id: str, model_id: str) -> tuple[int, datetime | None]:
        code = chart.staked(participant_id, model_id)
        async with self.db.connect() as conn:
            amount = -(await self.store.balances(conn, [code])).get(code, 0)
            return amount, await self.store.last_change(conn, code)

    async def view(self, locks: LockFinder, model_id: str, participant_id: str, tournament_id: str) -> StakeView:
        amount, updated = await self.current(participant_id, model_id)
        refs = await locks.locking(tournament_id, model_id) if tournament_id else []
        return StakeView(model_id, participant_id, amount, refs, updated)

    async def get(self, model: ModelInfo) -> StakeView:
        return await self.view(self.locks(), model.model_id, model.participant_id, model.tournament_id)

    async def page(self, participant_id: str | None, after: str | None, size: int) -> StakePage:
        """A page of stake accounts (any balance) by account code, each with its locks."""
        async with self.db.connect() as conn:
            accounts = await self.store.accounts(conn, participant_id, after, size + 1)
        locks = self.locks()
        views = [await self.view(locks, a.model_id, a.participant_id, a.tournament_id) for a in accounts[:size]]
        return StakePage(views, accounts[size - 1].code if len(accounts) > size else None)

    async def round_stakes(self, ref: RoundRef) -> list[tuple[str, str, int]]:
        """(model, participant, stake) of the models with a positive stake at risk in the round, by model id.

        Once the round is allocated the stakes recorded on its allocation lines are the answer (the stake
        may change after that); before, the current stakes of the models that submitted (locked meanwhile).
        """
        async with self.db.connect() as conn:
            rows = await self.store.allocated_lines(conn, ref.tournament_id, ref.round_number)
            if rows is not None:
                return sorted((r.model_id, r.participant_id, int(r.stake)) for r in rows if r.stake > 0)
            submitted = await self.peers.latest_submissions(ref)
            codes = {chart.staked(s.participant_id, m): (m, s.participant_id) for m, s in submitted.items()}
            found = await self.store.balances(conn, list(codes))
        return sorted((m, p, -found[c]) for c, (m, p) in codes.items() if -found.get(c, 0) > 0)
