"""Marking a round PAID in submissions once everything its allocation owes has been paid.

An allocation is settled when none of its positive lines is in a batch still in flight, and every
line not covered by a CONFIRMED batch is waiting only because its model's payable balance is under
the dust limit of its address (it rolls into a later batch). A round whose allocation pays nobody is
settled at once. The batch ids sent with MarkRoundPaid are stored before the call, so a retry after a
crash repeats exactly the same request (same request id, same content).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.payouts import faults, ledger
from services.payouts.domain import chart
from services.payouts.domain.batching import DUST_LIMITS
from services.payouts.domain.tournaments import RoundRef
from services.payouts.peers import Peers
from services.payouts.store import allocations as repo
from services.payouts.store.uow import unit_of_work
from shared.bitcoin_address import decode_address
from shared.db import Database
from shared.errors import DomainError, InvalidArgument
from shared.logging import get_logger

log = get_logger("crowdquant.payouts.settlement")


class RoundSettler:
    def __init__(self, database: Database, peers: Peers) -> None:
        self.db = database
        self.peers = peers

    async def _below_dust(self, tournament_id: str, model_id: str, owed: int) -> bool:
        if owed < min(DUST_LIMITS.values()):
            return True
        model = await self.peers.model(model_id)
        network = (await self.peers.tournament(tournament_id)).network
        try:
            kind = decode_address(model.payout_address, network).output_type
        except InvalidArgument:
            return False  # an address that cannot be paid keeps the round open until it is fixed
        return owed < DUST_LIMITS[kind]

    async def settled(self, allocation: Any) -> list[str] | None:
        """The confirmed batch ids paying the allocation, or None while something is still owed."""
        async with self.db.connect() as conn:
            lines = await repo.line_states(conn, allocation.allocation_id)
            waiting = [line for line in lines if line.state == "waiting"]
            codes = [chart.payable(line.participant_id, line.model_id) for line in waiting]
            balances = await ledger.balances_of(conn, codes)
        if any(line.state == "in_flight" for line in lines):
            return None
        for line, code in zip(waiting, codes, strict=True):
            if not await self._below_dust(allocation.tournament_id, line.model_id, -balances.get(code, 0)):
                return None
        return sorted({batch_id for line in lines for batch_id in line.confirmed})

    async def settle(self, allocations: Iterable[Any]) -> None:
        """Mark each settled allocation's round PAID; a peer failure is logged and retried later."""
        for allocation in allocations:
            if allocation.paid_at is not None:
                continue
            try:
                batch_ids = await self.settled(allocation)
                if batch_ids is None:
                    continue
                async with unit_of_work(self.db) as conn:
                    batch_ids = await repo.set_paid_batches(conn, allocation.allocation_id, batch_ids)
                ref = RoundRef(allocation.tournament_id, allocation.round_number)
                await self.peers.mark_paid(ref, batch_ids, request_id=f"paid:{allocation.allocation_id}")
                faults.reach("round.paid")
                async with unit_of_work(self.db) as conn:
                    await repo.set_paid(conn, allocation.allocation_id)
                log.info(
                    "round paid",
                    tournament=allocation.tournament_id,
                    round=allocation.round_number,
                    batches=len(batch_ids),
                )
            except DomainError as exc:
                log.warning(
                    "round not marked paid yet",
                    tournament=allocation.tournament_id,
                    round=allocation.round_number,
                    error=exc.message,
                )

    async def settle_pending(self) -> None:
        async with self.db.connect() as conn:
            allocations = await repo.unpaid(conn)
        await self.settle(allocations)
