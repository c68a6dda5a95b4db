"""The payout batch state machine, driven one stored step at a time.

PLANNED -> SIGNED: build and sign with the payout wallet, then store the raw transaction and txid
    (and every input it spends) before anything is broadcast. Coins of other SIGNED batches are
    excluded, so two stored transactions never spend the same coin.
SIGNED -> BROADCAST: broadcast exactly the stored bytes; a re-broadcast after a crash sends the same
    transaction (same txid), which the network and the wallet accept once.
BROADCAST -> CONFIRMED (when asked, or by ConfirmBatch): on bitcoinlib_test the confirmation is
    simulated, elsewhere read from the chain; then every output's reservation is posted (``pending``
    -> ``platform:wallet``) and the fee booked (``platform:fees`` / ``platform:wallet``) in one
    transaction with the state change.
FAILED -> VOIDED: the reservations are voided, so the balances are payable again. A batch fails only
    when nothing was built, or its stored transaction can provably never confirm (a coin it spends is
    spent by a confirmed transaction that is not one of its own versions).

Every step runs under one lock (a process lock plus a PostgreSQL session advisory lock, released if
the process dies), re-reads the stored state, and commits before the next begins; a fault point
follows each commit. Recovery is therefore just "advance every unfinished batch".
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from services.payouts import faults, ledger
from services.payouts.bitcoin.wallets import TEST_NETWORK, WalletBook
from services.payouts.domain import chart, ids
from services.payouts.domain.state import BatchState, require_state, transition
from services.payouts.settings import PayoutsSettings
from services.payouts.store import allocations as alloc_repo
from services.payouts.store import batches as repo
from services.payouts.store.uow import unit_of_work
from services.payouts.usecases.funding import sync_funding
from services.payouts.usecases.reconcile import Report, reconcile
from services.payouts.usecases.settlement import RoundSettler
from shared.db import Database
from shared.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from shared.logging import get_logger

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from services.payouts.bitcoin import SignedTransaction

Row = Any
"""A row of ``payouts.batches`` (attribute access by column name)."""
log = get_logger("crowdquant.payouts.batches")
COINS_PER_TEST_ADDRESS = 2 * 100_000_000
"""bitcoinlib_test gives each funded address two coins of 1 BTC."""


class _Stop(Exception):
    """Internal: the batch waits for something outside (a confirmation); not an error."""


def stored_transaction(batch: Row) -> SignedTransaction:
    """The batch's current signed transaction as stored (bitcoinlib is imported only when needed)."""
    from services.payouts.bitcoin import SignedTransaction

    return SignedTransaction.from_dict(repo.as_json(batch.tx))


def parse_batch_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        raise InvalidArgument(
            f"batch_id {value!r} is not a batch id (a UUID)", metadata={"field": "batch_id"}
        ) from None


class BatchEngine:
    def __init__(
        self, database: Database, wallets: WalletBook, settler: RoundSettler, settings: PayoutsSettings
    ) -> None:
        self.db = database
        self.wallets = wallets
        self.settler = settler
        self.settings = settings
        self._lock = asyncio.Lock()

    # --- the lock -----------------------------------------------------------------------------------

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """One batch step at a time, in this process and across processes sharing the database."""
        async with self._lock, repo.step_lock(self.db.engine):
            yield

    # --- public operations ------------------------------------------------------------------------

    async def advance(self, batch_id: uuid.UUID, *, rebroadcast: bool = False) -> None:
        async with self.exclusive():
            await self._advance(batch_id, rebroadcast=rebroadcast)

    async def request_confirmation(self, batch_id: uuid.UUID) -> None:
        async with self.exclusive():
            async with unit_of_work(self.db) as conn:
                batch = await self._get(conn, batch_id, for_update=True)
                require_state(
                    batch.state,
                    {BatchState.SIGNED, BatchState.BROADCAST, BatchState.CONFIRMED},
                    action="confirm",
                    batch_id=str(batch_id),
                )
                if not batch.confirm_requested:
                    await repo.request_confirmation(conn, batch_id)
            await self._advance(batch_id)
            async with self.db.connect() as conn:
                batch = await self._get(conn, batch_id)
            if batch.state == BatchState.BROADCAST:
                raise FailedPrecondition(
                    f"batch {batch_id} transaction {batch.txid} is not confirmed yet",
                    reason="NOT_CONFIRMED",
                    metadata={"txid": batch.txid},
                )

    async def void(self, batch_id: uuid.UUID, reason: str) -> None:
        async with self.exclusive():
            async with unit_of_work(self.db) as conn:
                batch = await self._get(conn, batch_id, for_update=True)
                if batch.state == BatchState.VOIDED:
                    return
                require_state(
                    batch.state,
                    {BatchState.PLANNED, BatchState.FAILED},
                    action="void",
                    batch_id=str(batch_id),
                )
                if batch.state == BatchState.PLANNED:
                    transition(batch.state, BatchState.FAILED, batch_id=str(batch_id))
                    await repo.set_state(
                        conn,
                        batch_id,
                        BatchState.FAILED.value,
                        failure_reason=reason or "voided by the operator",
                    )
            await self._advance(batch_id)

    async def bump_fee(
        self, batch_id: uuid.UUID, fee_rate: int, claim: Callable[[AsyncConnection], Awaitable[bool]]
    ) -> None:
        """Store a replacement spending the same inputs, then broadcast it.

        ``claim(conn)`` records the request's idempotency claim in the same transaction as the
        replacement, so a repeated request re-broadcasts the stored replacement instead of signing a third.
        """
        async with self.exclusive():
            async with unit_of_work(self.db) as conn:
                if await claim(conn):
                    batch = await self._get(conn, batch_id, for_update=True)
                    require_state(batch.state, {BatchState.BROADCAST}, action="bump the fee", batch_id=str(batch_id))
                    if fee_rate <= batch.fee_rate:
                        raise InvalidArgument(
                            f"fee_rate_sat_vb {fee_rate} must exceed the batch's current {batch.fee_rate} sat/vB",
                            metadata={"field": "fee_rate_sat_vb"},
                        )
                    previous = stored_transaction(batch)
                    replacement = await self.wallets.run(batch.network, lambda w: w.bump_fee(previous, fee_rate))
                    await repo.store_transaction(conn, batch_id, replacement, fee_rate, replaces=previous.txid)
                    await repo.set_state(
                        conn,
                        batch_id,
                        BatchState.BROADCAST.value,
                        **_tx_columns(replacement),
                        fee_rate=fee_rate,
                    )
            faults.reach("batch.bump_signed")
            await self._advance(batch_id)

    async def recover(self) -> list[uuid.UUID]:
        """Advance every unfinished batch from its stored state; re-broadcast BROADCAST ones (same bytes)."""
        async with self.db.connect() as conn:
            unfinished = [row.batch_id for row in await repo.unfinished(conn)]
            networks = await repo.networks(conn)
        async with self.exclusive():
            for network in networks:
                await sync_funding(self.db, self.wallets, network)
            for batch_id in unfinished:
                try:
                    await self._advance(batch_id, rebroadcast=True)
                except DomainError as exc:
                    log.warning("batch not recovered yet", batch=str(batch_id), error=exc.message)
        await self.settler.settle_pending()
        return unfinished

    async def reconcile(self) -> Report:
        """Compare the ledger with the chain and the wallet while no batch step runs."""
        async with self.exclusive():
            return await reconcile(self.db, self.wallets)

    # --- steps --------------------------------------------------------------------------------------

    async def _get(self, conn: AsyncConnection, batch_id: uuid.UUID, *, for_update: bool = False) -> Row:
        batch = await repo.get(conn, batch_id, for_update=for_update)
        if batch is None:
            raise NotFound(f"batch {batch_id} not found", metadata={"batch_id": str(batch_id)})
        return batch

    async def _advance(self, batch_id: uuid.UUID, *, rebroadcast: bool = False) -> None:
        while True:
            async with self.db.connect() as conn:
                batch = await self._get(conn, batch_id)
            state = BatchState(batch.state)
            try:
                if state is BatchState.PLANNED:
                    await self._sign(batch)
                elif state is BatchState.SIGNED:
                    await self._broadcast(batch)
                elif state is BatchState.BROADCAST:
                    if rebroadcast or not await self._was_sent(batch.txid):
                        rebroadcast = False
                        await self._broadcast(batch)
                        continue
                    await self._confirm(batch)
                elif state is BatchState.FAILED:
                    await self._void(batch)
                else:
                    return
            except _Stop:
                return

    async def _was_sent(self, txid: str) -> bool:
        async with self.db.connect() as conn:
            row = await repo.transaction(conn, txid)
        return row is not None and row.broadcast_at is not None

    async def _fail(self, batch: Row, reason: str) -> None:
        async with unit_of_work(self.db) as conn:
            transition(batch.state, BatchState.FAILED, batch_id=str(batch.batch_id))
            await repo.set_state(conn, batch.batch_id, BatchState.FAILED.value, failure_reason=reason[:1000])
        log.warning("batch failed", batch=str(batch.batch_id), reason=reason)

    async def _build(self, batch: Row, payments: list[tuple[str, int]]) -> SignedTransaction:
        async with self.db.connect() as conn:
            reserved = await repo.reserved_coins(conn, batch.batch_id)
        return await self.wallets.run(
            batch.network, lambda w: w.build_batch(payments, batch.fee_rate, exclude=reserved)
        )

    async def _fund(self, network: str, needed: int) -> None:
        addresses = max(1, math.ceil(needed / COINS_PER_TEST_ADDRESS))
        await self.wallets.run(network, lambda w: w.fund_test_wallet(addresses))
        faults.reach("wallet.funded")
        await sync_funding(self.db, self.wallets, network)
        faults.reach("funding.recorded")

    async def _sign(self, batch: Row) -> None:
        async with self.db.connect() as conn:
            outputs = (await repo.outputs(conn, [batch.batch_id]))[batch.batch_id]
        payments = [(o.address, int(o.amount)) for o in outputs]
        try:
            try:
                tx = await self._build(batch, payments)
            except FailedPrecondition as exc:
                if not (
                    exc.reason == "INSUFFICIENT_FUNDS"
                    and batch.network == TEST_NETWORK
                    and self.settings.auto_fund_test_wallet
                ):
                    raise
                await self._fund(batch.network, int(exc.metadata.get("needed", "0") or 0))
                tx = await self._build(batch, payments)
        except (FailedPrecondition, InvalidArgument) as exc:
            await self._fail(batch, f"could not build the transaction: {exc.message}")
            return
        await self._record_wallet(batch.network)
        async with unit_of_work(self.db) as conn:
            current = await self._get(conn, batch.batch_id, for_update=True)
            if current.state != BatchState.PLANNED:
                return
            await repo.store_transaction(conn, batch.batch_id, tx, batch.fee_rate)
            await repo.set_state(conn, batch.batch_id, BatchState.SIGNED.value, **_tx_columns(tx))
        log.info("batch signed", batch=str(batch.batch_id), txid=tx.txid, outputs=len(payments), fee=tx.fee)
        faults.reach("batch.signed")

    async def _broadcast(self, batch: Row) -> None:
        tx = stored_transaction(batch)
        try:
            await self.wallets.run(batch.network, lambda w: w.broadcast(tx))
        except FailedPrecondition as exc:
            if exc.reason != "INPUTS_SPENT":
                raise
            await self._spent_elsewhere(batch, exc)
            return
        first = batch.state == BatchState.SIGNED
        if first:
            faults.reach("batch.sent")
        async with unit_of_work(self.db) as conn:
            await repo.mark_sent(conn, tx.txid)
            if first:
                await repo.set_state(conn, batch.batch_id, BatchState.BROADCAST.value)
        if first:
            log.info("batch broadcast", batch=str(batch.batch_id), txid=tx.txid)
            faults.reach("batch.broadcast")

    async def _spent_elsewhere(self, batch: Row, exc: FailedPrecondition) -> None:
        """A coin of the batch is spent by a confirmed transaction: adopt it if it is one of our versions."""
        spender = exc.metadata.get("spent_by", "")
        async with self.db.connect() as conn:
            version = await repo.transaction(conn, spender) if spender else None
        if version is None or version.batch_id != batch.batch_id:
            await self._fail(batch, exc.message)
            return
        adopted = stored_transaction(version)
        async with unit_of_work(self.db) as conn:
            await repo.mark_sent(conn, adopted.txid)
            await repo.set_state(
                conn,
                batch.batch_id,
                BatchState.BROADCAST.value,
                **_tx_columns(adopted),
                confirm_requested=True,
            )

    async def _confirm(self, batch: Row) -> None:
        if not batch.confirm_requested:
            raise _Stop()
        if batch.network == TEST_NETWORK:
            await self.wallets.run(batch.network, lambda w: w.mark_confirmed(batch.txid))
            faults.reach("batch.mined")
        else:
            try:
                confirmations = await self.wallets.run(batch.network, lambda w: w.confirmations(batch.txid))
            except Unavailable:
                raise _Stop() from None
            if confirmations < 1:
                raise _Stop()
        await sync_funding(self.db, self.wallets, batch.network)
        async with unit_of_work(self.db) as conn:
            current = await self._get(conn, batch.batch_id, for_update=True)
            if current.state != BatchState.BROADCAST:
                return
            outputs = (await repo.outputs(conn, [batch.batch_id]))[batch.batch_id]
            await ledger.settle_many(
                conn,
                [
                    ledger.Settlement(
                        o.pending_id,
                        ids.settlement_entry(batch.batch_id, o.model_id, "post"),
                        memo=f"paid in transaction {current.txid} output {o.vout}",
                        metadata={"batch_id": str(batch.batch_id), "txid": current.txid, "vout": str(o.vout)},
                    )
                    for o in outputs
                ],
            )
            await ledger.post_entry(
                conn,
                ledger.transfer(
                    ids.fee_entry(batch.batch_id),
                    "payout.fee",
                    debit=chart.FEES,
                    credit=chart.wallet(batch.network),
                    amount=int(current.fee),
                    memo=f"network fee of transaction {current.txid}",
                    metadata={"batch_id": str(batch.batch_id), "txid": current.txid},
                ),
            )
            await repo.set_state(conn, batch.batch_id, BatchState.CONFIRMED.value)
        log.info("batch confirmed", batch=str(batch.batch_id), txid=batch.txid)
        faults.reach("batch.confirmed")
        async with self.db.connect() as conn:
            allocations = await alloc_repo.for_batch(conn, batch.batch_id)
        await self.settler.settle(allocations)

    async def _void(self, batch: Row) -> None:
        async with unit_of_work(self.db) as conn:
            current = await self._get(conn, batch.batch_id, for_update=True)
            if current.state != BatchState.FAILED:
                return
            outputs = (await repo.outputs(conn, [batch.batch_id]))[batch.batch_id]
            await ledger.settle_many(
                conn,
                [
                    ledger.Settlement(
                        o.pending_id,
                        ids.settlement_entry(batch.batch_id, o.model_id, "void"),
                        void=True,
                        memo=f"batch {batch.batch_id} voided: {current.failure_reason}"[:1000],
                        metadata={"batch_id": str(batch.batch_id)},
                    )
                    for o in outputs
                ],
            )
            await repo.set_state(conn, batch.batch_id, BatchState.VOIDED.value)
        log.info("batch voided", batch=str(batch.batch_id))
        faults.reach("batch.voided")

    async def _record_wallet(self, network: str) -> None:
        address = await self.wallets.run(network, lambda w: w.receive_address())
        async with unit_of_work(self.db) as conn:
            await repo.record_wallet(conn, network, self.wallets.name(network), self.wallets.storage, address)


def _tx_columns(tx: SignedTransaction) -> dict[str, object]:
    return {
        "txid": tx.txid,
        "raw_tx_hex": tx.raw_hex,
        "tx": json.dumps(tx.as_dict()),
        "fee": tx.fee,
        "vsize": tx.vsize,
        "change": tx.change_amount,
    }
