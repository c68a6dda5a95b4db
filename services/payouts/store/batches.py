"""Payout batches, their outputs and every transaction signed for them.

Each state change is one UPDATE in the transaction that also writes its ledger entries, so the
stored state and the ledger never disagree; the ``batches_guard`` trigger refuses illegal moves.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

UNFINISHED = ("PLANNED", "SIGNED", "BROADCAST", "FAILED")
_TIME_COLUMN = {
    "SIGNED": "signed_at",
    "BROADCAST": "broadcast_at",
    "CONFIRMED": "confirmed_at",
    "VOIDED": "voided_at",
}


def as_json(value: Any) -> Any:
    """A jsonb value as Python data (the driver hands it over as text in plain SQL queries)."""
    return json.loads(value) if isinstance(value, str) else value


async def lock(conn: AsyncConnection) -> None:
    """The payable-balances lock: a planner and an allocation never interleave their ledger writes."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('payouts-payable', 0))"))


@asynccontextmanager
async def step_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """The batch-step lock across processes: a session advisory lock, released if the process dies."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("SELECT pg_advisory_lock(hashtextextended('payouts-batches', 0))"))
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(hashtextextended('payouts-batches', 0))"))


async def insert(
    conn: AsyncConnection,
    *,
    batch_id: uuid.UUID,
    subject: str,
    request_id: str,
    position: int,
    network: str,
    fee_rate: int,
    confirm: bool,
    total: int,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO payouts.batches (batch_id, subject, request_id, position, network, state, fee_rate, "
            "confirm_requested, total_output) VALUES (:b, :s, :r, :p, :net, 'PLANNED', :rate, :c, :total)"
        ),
        {
            "b": batch_id,
            "s": subject,
            "r": request_id,
            "p": position,
            "net": network,
            "rate": fee_rate,
            "c": confirm,
            "total": total,
        },
    )


async def insert_outputs(conn: AsyncConnection, batch_id: uuid.UUID, outputs: Sequence[dict[str, Any]]) -> None:
    await conn.execute(
        text(
            "INSERT INTO payouts.batch_outputs (batch_id, position, model_id, participant_id, tournament_id, "
            "address, output_type, amount, pending_id, reserve_entry_id) "
            "VALUES (:b, :position, :model_id, :participant_id, "
            ":tournament_id, :address, :output_type, :amount, :pending_id, :reserve_entry_id)"
        ),
        [{"b": batch_id, **o} for o in outputs],
    )


async def insert_links(conn: AsyncConnection, batch_id: uuid.UUID, links: Sequence[tuple[str, uuid.UUID]]) -> None:
    if links:
        await conn.execute(
            text("INSERT INTO payouts.payout_links (batch_id, model_id, allocation_id) VALUES (:b, :m, :a)"),
            [{"b": batch_id, "m": m, "a": a} for m, a in links],
        )


async def get(conn: AsyncConnection, batch_id: uuid.UUID, *, for_update: bool = False) -> Any | None:
    lock_clause = " FOR UPDATE" if for_update else ""
    return (
        await conn.execute(text(f"SELECT * FROM payouts.batches WHERE batch_id = :b{lock_clause}"), {"b": batch_id})
    ).first()


async def for_request(conn: AsyncConnection, subject: str, request_id: str) -> list[Any]:
    return list(
        (
            await conn.execute(
                text("SELECT * FROM payouts.batches WHERE subject = :s AND request_id = :r ORDER BY position"),
                {"s": subject, "r": request_id},
            )
        ).all()
    )


async def outputs(conn: AsyncConnection, batch_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    rows = (
        await conn.execute(
            text("SELECT * FROM payouts.batch_outputs WHERE batch_id = ANY(:b) ORDER BY batch_id, position"),
            {"b": list(batch_ids)},
        )
    ).all()
    found: dict[uuid.UUID, list[Any]] = {b: [] for b in batch_ids}
    for row in rows:
        found[row.batch_id].append(row)
    return found


async def links(conn: AsyncConnection, batch_ids: Sequence[uuid.UUID]) -> dict[tuple[uuid.UUID, str], list[str]]:
    """(batch, model) -> the allocation ids that output pays."""
    rows = (
        await conn.execute(
            text(
                "SELECT batch_id, model_id, allocation_id FROM payouts.payout_links WHERE batch_id = ANY(:b) "
                "ORDER BY allocation_id"
            ),
            {"b": list(batch_ids)},
        )
    ).all()
    found: dict[tuple[uuid.UUID, str], list[str]] = {}
    for row in rows:
        found.setdefault((row.batch_id, row.model_id), []).append(str(row.allocation_id))
    return found


async def rounds(conn: AsyncConnection, batch_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[tuple[str, int]]]:
    rows = (
        await conn.execute(
            text(
                """SELECT DISTINCT k.batch_id, a.tournament_id, a.round_number FROM payouts.payout_links k
             JOIN payouts.allocations a ON a.allocation_id = k.allocation_id WHERE k.batch_id = ANY(:b)
            ORDER BY a.tournament_id, a.round_number"""
            ),
            {"b": list(batch_ids)},
        )
    ).all()
    found: dict[uuid.UUID, list[tuple[str, int]]] = {b: [] for b in batch_ids}
    for row in rows:
        found[row.batch_id].append((row.tournament_id, row.round_number))
    return found


async def set_state(conn: AsyncConnection, batch_id: uuid.UUID, state: str, **values: Any) -> None:
    sets = ["state = :state", *(f"{k} = :{k}" for k in values)]
    if state in _TIME_COLUMN:
        sets.append(f"{_TIME_COLUMN[state]} = coalesce({_TIME_COLUMN[state]}, now())")
    await conn.execute(
        text(f"UPDATE payouts.batches SET {', '.join(sets)} WHERE batch_id = :b"),
        {"b": batch_id, "state": state, **values},
    )


async def request_confirmation(conn: AsyncConnection, batch_id: uuid.UUID) -> None:
    """Remember that the batch is to be confirmed, so a restart carries on with it."""
    await conn.execute(text("UPDATE payouts.batches SET confirm_requested = true WHERE batch_id = :b"), {"b": batch_id})


async def store_transaction(
    conn: AsyncConnection, batch_id: uuid.UUID, tx: Any, fee_rate: int, replaces: str | None = None
) -> None:
    """Record a signed transaction (before it is ever broadcast) and make it the batch's current one."""
    stored = json.dumps(tx.as_dict())
    await conn.execute(
        text(
            "INSERT INTO payouts.batch_transactions (txid, batch_id, raw_tx_hex, tx, fee, vsize, fee_rate) "
            "VALUES (:txid, :b, :raw, CAST(:tx AS jsonb), :fee, :vsize, :rate) ON CONFLICT (txid) DO NOTHING"
        ),
        {
            "txid": tx.txid,
            "b": batch_id,
            "raw": tx.raw_hex,
            "tx": stored,
            "fee": tx.fee,
            "vsize": tx.vsize,
            "rate": fee_rate,
        },
    )
    if replaces:
        await conn.execute(
            text("UPDATE payouts.batch_transactions SET replaced_by = :new WHERE txid = :old"),
            {"new": tx.txid, "old": replaces},
        )
    for position, payee in enumerate(tx.payees):
        await conn.execute(
            text("UPDATE payouts.batch_outputs SET vout = :v WHERE batch_id = :b AND position = :p"),
            {"v": payee.vout, "b": batch_id, "p": position},
        )


async def mark_sent(conn: AsyncConnection, txid: str) -> None:
    await conn.execute(
        text("UPDATE payouts.batch_transactions SET broadcast_at = coalesce(broadcast_at, now()) WHERE txid = :t"),
        {"t": txid},
    )


async def transaction(conn: AsyncConnection, txid: str) -> Any | None:
    return (await conn.execute(text("SELECT * FROM payouts.batch_transactions WHERE txid = :t"), {"t": txid})).first()


async def transactions(conn: AsyncConnection, batch_ids: Sequence[uuid.UUID] | None = None) -> list[Any]:
    """Every transaction signed for the batches (all batches when None), oldest first."""
    return list(
        (
            await conn.execute(
                text(
                    "SELECT * FROM payouts.batch_transactions "
                    "WHERE CAST(:b AS uuid[]) IS NULL OR batch_id = ANY(:b) "
                    "ORDER BY created_at, txid"
                ),
                {"b": list(batch_ids) if batch_ids is not None else None},
            )
        ).all()
    )


async def reserved_coins(conn: AsyncConnection, exclude_batch: uuid.UUID) -> set[tuple[str, int]]:
    """Coins spent by SIGNED batches not yet broadcast: no other batch may spend them meanwhile."""
    rows = (
        await conn.execute(
            text("SELECT tx FROM payouts.batches WHERE state = 'SIGNED' AND batch_id <> :b"),
            {"b": exclude_batch},
        )
    ).all()
    return {(i["txid"], int(i["vout"])) for row in rows for i in as_json(row.tx)["inputs"]}


async def unfinished(conn: AsyncConnection) -> list[Any]:
    return list(
        (
            await conn.execute(
                text(
                    "SELECT * FROM payouts.batches "
                    "WHERE state IN ('PLANNED', 'SIGNED', 'BROADCAST', 'FAILED') ORDER BY seq"
                ),
            )
        ).all()
    )


async def in_states(conn: AsyncConnection, states: Sequence[str], network: str | None = None) -> list[Any]:
    return list(
        (
            await conn.execute(
                text(
                    "SELECT * FROM payouts.batches "
                    "WHERE state = ANY(:s) AND (CAST(:n AS text) IS NULL OR network = :n) "
                    "ORDER BY seq"
                ),
                {"s": list(states), "n": network},
            )
        ).all()
    )


async def networks(conn: AsyncConnection) -> list[str]:
    rows = (
        await conn.execute(
            text("SELECT network FROM payouts.batches UNION SELECT network FROM payouts.wallets ORDER BY 1")
        )
    ).all()
    return [row.network for row in rows]


async def page(
    conn: AsyncConnection,
    *,
    state: str | None,
    tournament_id: str | None,
    round_number: int | None,
    before: int | None,
    limit: int,
) -> list[Any]:
    """Newest first (by seq), optionally of one state and of batches paying one round."""
    return list(
        (
            await conn.execute(
                text(
                    """SELECT b.* FROM payouts.batches b
            WHERE (CAST(:s AS text) IS NULL OR b.state = :s)
              AND (CAST(:before AS bigint) IS NULL OR b.seq < :before)
              AND (CAST(:t AS text) IS NULL OR EXISTS (
                   SELECT 1 FROM payouts.payout_links k
                     JOIN payouts.allocations a ON a.allocation_id = k.allocation_id
                    WHERE k.batch_id = b.batch_id AND a.tournament_id = :t AND a.round_number = :n))
            ORDER BY b.seq DESC LIMIT :lim"""
                ),
                {"s": state, "t": tournament_id, "n": round_number, "before": before, "lim": limit},
            )
        ).all()
    )


async def payouts_of(conn: AsyncConnection, participant_id: str, before: list[int] | None, limit: int) -> list[Any]:
    """The participant's outputs in batches with a transaction (SIGNED or later, not VOIDED), newest first."""
    params: dict[str, Any] = {"p": participant_id, "lim": limit}
    keyset = ""
    if before is not None:
        keyset = "AND (b.seq, o.position) < (:k0, :k1)"
        params.update(k0=before[0], k1=before[1])
    return list(
        (
            await conn.execute(
                text(
                    f"""SELECT o.*, b.seq, b.state, b.txid, b.broadcast_at, b.confirmed_at
              FROM payouts.batch_outputs o
              JOIN payouts.batches b ON b.batch_id = o.batch_id
             WHERE o.participant_id = :p AND b.txid IS NOT NULL AND b.state <> 'VOIDED' {keyset}
             ORDER BY b.seq DESC, o.position DESC LIMIT :lim"""
                ),
                params,
            )
        ).all()
    )


async def record_wallet(conn: AsyncConnection, network: str, name: str, storage: str, address: str) -> None:
    await conn.execute(
        text(
            "INSERT INTO payouts.wallets (network, wallet_name, storage, receive_address) "
            "VALUES (:n, :w, :s, :a) "
            "ON CONFLICT (network) DO NOTHING"
        ),
        {"n": network, "w": name, "s": storage, "a": address},
    )
