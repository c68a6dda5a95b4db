"""Reconciliation: the ledger against the chain's view of every payout transaction and of the wallet.

For each BROADCAST or CONFIRMED batch the current raw transaction is decoded with embit (not with the
library that built it): its txid must be the stored one, and every payee output (address, amount,
output index) must match the ledger reservation of that output, posted once the batch is CONFIRMED;
any other output must be the wallet's own change; the fee (inputs as booked minus decoded outputs)
must equal the fee booked in the ledger. Per network, the ledger's wallet account must equal the
wallet's unspent coins plus what BROADCAST batches have spent but the ledger books only at
confirmation. Read-only; differences are listed, none means clean.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.payouts import ledger
from services.payouts.bitcoin import chain_view
from services.payouts.bitcoin.wallets import WalletBook
from services.payouts.domain import chart, ids
from services.payouts.domain.state import BatchState
from services.payouts.store import batches as repo
from services.payouts.store.uow import unit_of_work
from shared.db import Database
from shared.errors import NotFound

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

MISSING, UNEXPECTED, AMOUNT, ADDRESS, WALLET = (
    "MISSING_OUTPUT",
    "UNEXPECTED_OUTPUT",
    "AMOUNT_MISMATCH",
    "ADDRESS_MISMATCH",
    "WALLET_BALANCE_MISMATCH",
)


@dataclass
class Difference:
    kind: str
    description: str
    batch_id: str = ""
    txid: str = ""
    vout: int = -1
    participant_id: str = ""
    address: str = ""
    ledger_amount: int = 0
    chain_amount: int = 0


@dataclass
class Report:
    differences: list[Difference] = field(default_factory=list)
    outputs_checked: int = 0
    wallet_ledger: int = 0
    wallet_utxos: int = 0

    @property
    def clean(self) -> bool:
        return not self.differences


async def _check_batch(conn: AsyncConnection, batch: Any, outputs: list[Any], report: Report) -> int:
    """Compare one batch's transaction with its ledger postings; return what it took from the wallet."""
    bid = str(batch.batch_id)
    stored = repo.as_json(batch.tx)
    try:
        chain = chain_view.decode(batch.raw_tx_hex, batch.network)
    except ValueError as exc:
        report.differences.append(Difference(MISSING, f"stored transaction does not decode: {exc}", bid, batch.txid))
        return 0
    if chain.txid != batch.txid:
        report.differences.append(
            Difference(
                MISSING,
                f"raw bytes are transaction {chain.txid}, not the stored {batch.txid}",
                bid,
                batch.txid,
            )
        )
    confirmed = batch.state == BatchState.CONFIRMED
    payee_vouts = set()
    for output in outputs:
        report.outputs_checked += 1
        pending = await ledger.get_pending(conn, output.pending_id)
        expected_state = ledger.PendingState.POSTED if confirmed else ledger.PendingState.PENDING
        ledger_amount = pending.posted_amount if confirmed else pending.amount
        base = {
            "batch_id": bid,
            "txid": batch.txid,
            "vout": output.vout if output.vout is not None else -1,
            "participant_id": output.participant_id,
            "address": output.address,
        }
        if pending.state != expected_state:
            report.differences.append(
                Difference(
                    AMOUNT,
                    f"reservation of model {output.model_id} is {pending.state}, expected {expected_state}",
                    ledger_amount=ledger_amount or 0,
                    **base,
                )
            )
        if output.vout is None or not 0 <= output.vout < len(chain.outputs):
            report.differences.append(
                Difference(
                    MISSING,
                    f"no output pays model {output.model_id}",
                    ledger_amount=ledger_amount or 0,
                    **base,
                )
            )
            continue
        payee_vouts.add(output.vout)
        on_chain = chain.outputs[output.vout]
        if not chain_view.same_address(on_chain.address, output.address):
            report.differences.append(
                Difference(
                    ADDRESS,
                    f"output {output.vout} pays {on_chain.address}, the "
                    f"ledger paid model {output.model_id} at {output.address}",
                    ledger_amount=ledger_amount or 0,
                    chain_amount=on_chain.amount,
                    **base,
                )
            )
        if on_chain.amount != ledger_amount or on_chain.amount != output.amount:
            report.differences.append(
                Difference(
                    AMOUNT,
                    f"output {output.vout} carries {on_chain.amount} sat, the ledger {ledger_amount} sat",
                    ledger_amount=ledger_amount or 0,
                    chain_amount=on_chain.amount,
                    **base,
                )
            )
    for extra in chain.outputs:
        if extra.vout in payee_vouts:
            continue
        is_change = (
            extra.vout == stored.get("change_vout")
            and extra.amount == stored.get("change_amount")
            and chain_view.same_address(extra.address, stored.get("change_address") or "")
        )
        if not is_change:
            report.differences.append(
                Difference(
                    UNEXPECTED,
                    f"output {extra.vout} is neither a payee nor the wallet's change",
                    bid,
                    batch.txid,
                    extra.vout,
                    "",
                    extra.address,
                    0,
                    extra.amount,
                )
            )
    fee = sum(int(i["value"]) for i in stored["inputs"]) - chain.output_total
    if confirmed:
        try:
            booked = next(
                p.amount
                for p in (await ledger.get_entry(conn, ids.fee_entry(batch.batch_id))).postings
                if p.account_code == chart.FEES
            )
        except NotFound:
            booked = 0
        if booked != fee:
            report.differences.append(
                Difference(
                    AMOUNT,
                    f"fee on chain {fee} sat, booked {booked} sat",
                    bid,
                    batch.txid,
                    ledger_amount=booked,
                    chain_amount=fee,
                )
            )
        return 0
    return chain.output_total - (int(stored.get("change_amount") or 0)) + fee


async def reconcile(database: Database, wallets: WalletBook) -> Report:
    report = Report()
    async with unit_of_work(database) as conn:
        live = await repo.in_states(conn, [BatchState.BROADCAST.value, BatchState.CONFIRMED.value])
        outputs = await repo.outputs(conn, [b.batch_id for b in live])
        in_flight: dict[str, int] = {}
        for batch in live:
            spent = await _check_batch(conn, batch, outputs[batch.batch_id], report)
            in_flight[batch.network] = in_flight.get(batch.network, 0) + spent
        networks = await repo.networks(conn)
        ledger_wallets = await ledger.balances_of(conn, [chart.wallet(n) for n in networks])
    for network in networks:
        booked = ledger_wallets.get(chart.wallet(network), 0)
        utxos = await wallets.run(network, lambda w: w.balance(min_confirms=0))
        report.wallet_ledger += booked
        report.wallet_utxos += utxos
        expected = booked - in_flight.get(network, 0)
        if utxos != expected:
            report.differences.append(
                Difference(
                    WALLET,
                    f"{network}: wallet coins {utxos} sat, ledger wallet account {booked} sat less "
                    f"{in_flight.get(network, 0)} sat spent by unconfirmed batches = {expected} sat",
                    ledger_amount=expected,
                    chain_amount=utxos,
                )
            )
    return report
