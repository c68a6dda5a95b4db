"""Planning payout batches: which payable balances go into which transaction, reserved in the ledger.

Each model's whole payable balance is one output to its payout address (the address its owner set in
submissions, read at planning time and stored with the output). Balances under the dust limit of the
address's output type, and addresses that do not decode for the tournament's network, are held: they
stay payable and roll into a later batch. Planning writes, in one transaction, the PLANNED batches,
their outputs, which allocation lines each output pays, and one two-phase reservation per output
(``payable`` -> ``pending``, bound for ``platform:wallet:{network}``). Nothing is signed yet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.payouts import faults, ledger
from services.payouts.domain import chart, ids
from services.payouts.domain.batching import PayableBalance, plan_batches
from services.payouts.domain.tournaments import RoundRef
from services.payouts.peers import Peers
from services.payouts.store import allocations as alloc_repo
from services.payouts.store import batches as batch_repo
from services.payouts.store.uow import unit_of_work
from services.payouts.usecases.once import Once
from shared.db import Database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class Payee:
    model_id: str
    participant_id: str
    tournament_id: str
    network: str
    address: str


@dataclass(frozen=True)
class HeldPayout:
    participant_id: str
    model_id: str
    address: str
    amount: int
    reason: str
    detail: str


@dataclass(frozen=True)
class BatchOptions:
    fee_rate: int
    max_outputs: int
    confirm: bool
    round: RoundRef | None = None


@dataclass
class Plan:
    batch_ids: list[uuid.UUID] = field(default_factory=list)
    held: list[HeldPayout] = field(default_factory=list)


class PayeeDirectory:
    """Where each model is paid: its tournament's network and its current payout address (in submissions)."""

    def __init__(self, peers: Peers) -> None:
        self.peers = peers

    async def lookup(self, tournaments: dict[str, str]) -> dict[str, Payee]:
        """``tournaments`` maps model id -> tournament id; unknown models are left out."""
        found: dict[str, Payee] = {}
        for tournament_id in sorted(set(tournaments.values())):
            network = (await self.peers.tournament(tournament_id)).network
            models = await self.peers.models(tournament_id)
            for model_id, owner in tournaments.items():
                model = models.get(model_id)
                if owner == tournament_id and model is not None:
                    found[model_id] = Payee(
                        model_id, model.participant_id, tournament_id, network, model.payout_address
                    )
        return found


async def payable_models(conn: AsyncConnection) -> dict[str, str]:
    """Models with a payable balance, mapped to the tournament their allocations came from."""
    owed = [a.model_id for a in await ledger.owed(conn, "payable") if a.amount > 0]
    return await alloc_repo.model_tournaments(conn, owed)


async def create_batches(
    database: Database,
    directory: PayeeDirectory,
    *,
    subject: str,
    request_id: str,
    options: BatchOptions,
    once: Once,
) -> Any:
    """Plan and reserve the payable balances once per request (the action answers the ``Plan``)."""
    async with database.connect() as conn:
        tournaments = await payable_models(conn)
    payees = await directory.lookup(tournaments)
    planned: list[bool] = []
    async with unit_of_work(database) as conn:

        async def action() -> Plan:
            result = await plan(conn, subject=subject, request_id=request_id, options=options, payees=payees)
            planned.append(bool(result.batch_ids))
            return result

        stored = await once(conn, action)
    if any(planned):
        faults.reach("batch.planned")
    return stored


async def plan(
    conn: AsyncConnection, *, subject: str, request_id: str, options: BatchOptions, payees: dict[str, Payee]
) -> Plan:
    """Plan and reserve inside the caller's transaction (which also holds the request's idempotency claim)."""
    await batch_repo.lock(conn)
    owed = [a for a in await ledger.owed(conn, "payable") if a.amount > 0]
    open_lines = await alloc_repo.open_lines(conn, [a.model_id for a in owed])
    if options.round is not None:
        wanted = {
            row.allocation_id
            for row in await alloc_repo.for_round(conn, options.round.tournament_id, options.round.round_number)
        }
        owed = [a for a in owed if wanted & set(open_lines.get(a.model_id, []))]
    result = Plan()
    by_network: dict[str, list[PayableBalance]] = {}
    for account in owed:
        payee = payees.get(account.model_id)
        if payee is None:
            result.held.append(
                HeldPayout(
                    account.participant_id,
                    account.model_id,
                    "",
                    account.amount,
                    "INVALID_ADDRESS",
                    "the model's payout address is unknown",
                )
            )
            continue
        by_network.setdefault(payee.network, []).append(PayableBalance(account.model_id, payee.address, account.amount))
    for network in sorted(by_network):
        planned = plan_batches(by_network[network], network=network, max_outputs=options.max_outputs)
        result.held += [
            HeldPayout(
                payees[h.participant_id].participant_id,
                h.participant_id,
                h.address,
                h.amount,
                h.reason.value,
                h.detail,
            )
            for h in planned.held
        ]
        if planned.batches:
            await ledger.open_accounts(
                conn,
                [
                    *chart.platform_specs((network,)),
                    *[
                        spec
                        for p in planned.batches
                        for pay in p.payments
                        for spec in chart.participant_specs(
                            payees[pay.participant_id].participant_id,
                            {pay.participant_id: payees[pay.participant_id].tournament_id},
                        )
                    ],
                ],
            )
        for batch in planned.batches:
            batch_id = ids.batch(subject, request_id, len(result.batch_ids))
            await batch_repo.insert(
                conn,
                batch_id=batch_id,
                subject=subject,
                request_id=request_id,
                position=len(result.batch_ids),
                network=network,
                fee_rate=options.fee_rate,
                confirm=options.confirm,
                total=batch.total,
            )
            await _reserve(
                conn,
                batch_id,
                network,
                [(payees[p.participant_id], p.amount, p.output_type.value) for p in batch.payments],
                open_lines,
            )
            result.batch_ids.append(batch_id)
    return result


async def _reserve(
    conn: AsyncConnection,
    batch_id: uuid.UUID,
    network: str,
    payments: list[tuple[Payee, int, str]],
    open_lines: dict[str, list[uuid.UUID]],
) -> None:
    outputs, reservations, links = [], [], []
    for position, (payee, amount, output_type) in enumerate(payments):
        pending_id, entry_id = ids.reservation(batch_id, payee.model_id)
        outputs.append(
            {
                "position": position,
                "model_id": payee.model_id,
                "participant_id": payee.participant_id,
                "tournament_id": payee.tournament_id,
                "address": payee.address,
                "output_type": output_type,
                "amount": amount,
                "pending_id": pending_id,
                "reserve_entry_id": entry_id,
            }
        )
        reservations.append(
            ledger.Reservation(
                pending_id,
                entry_id,
                debit=chart.payable(payee.participant_id, payee.model_id),
                credit=chart.wallet(network),
                holding=chart.pending(payee.participant_id, payee.model_id),
                amount=amount,
                memo=f"payout of model {payee.model_id} in batch {batch_id}",
                metadata={"batch_id": str(batch_id), "model_id": payee.model_id},
            )
        )
        links += [(payee.model_id, allocation_id) for allocation_id in open_lines.get(payee.model_id, [])]
    await batch_repo.insert_outputs(conn, batch_id, outputs)
    await batch_repo.insert_links(conn, batch_id, links)
    await ledger.reserve_many(conn, reservations)
