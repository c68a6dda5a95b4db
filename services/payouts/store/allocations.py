"""Allocations and their lines, and which lines the payout batches cover.

A positive line is *paid* when a CONFIRMED batch covers it, *in flight* while a PLANNED, SIGNED,
BROADCAST or FAILED batch does, and *waiting* otherwise (not batched yet, under the dust limit, or
its batch was voided). Those three states decide when a round may be marked PAID.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

LINE_COLUMNS = (
    "model_id",
    "participant_id",
    "display_name",
    "contribution",
    "corr",
    "mmc",
    "loo",
    "stake",
    "amount",
    "eligible",
    "reason",
    "reason_code",
    "reason_value",
    "reason_threshold",
    "reason_subject",
)


async def get(conn: AsyncConnection, tournament_id: str, round_number: int, policy: str) -> Any | None:
    return (
        await conn.execute(
            text("SELECT * FROM payouts.allocations WHERE tournament_id = :t AND round_number = :n AND policy = :p"),
            {"t": tournament_id, "n": round_number, "p": policy},
        )
    ).first()


async def for_round(conn: AsyncConnection, tournament_id: str, round_number: int) -> list[Any]:
    return list(
        (
            await conn.execute(
                text(
                    "SELECT * FROM payouts.allocations WHERE tournament_id = :t AND round_number = :n "
                    "ORDER BY created_at"
                ),
                {"t": tournament_id, "n": round_number},
            )
        ).all()
    )


async def insert(
    conn: AsyncConnection,
    *,
    allocation_id: uuid.UUID,
    tournament_id: str,
    round_number: int,
    policy: str,
    parameters: bytes,
    payout_factor: str,
    total: int,
    entry_id: uuid.UUID | None,
    lines: Sequence[dict[str, Any]],
) -> None:
    await conn.execute(
        text(
            "INSERT INTO payouts.allocations (allocation_id, tournament_id, round_number, policy, "
            "parameters, "
            "payout_factor, total, entry_id) VALUES (:a, :t, :n, :p, :params, :f, :total, :e)"
        ),
        {
            "a": allocation_id,
            "t": tournament_id,
            "n": round_number,
            "p": policy,
            "params": parameters,
            "f": payout_factor,
            "total": total,
            "e": entry_id,
        },
    )
    if lines:
        columns = ", ".join(LINE_COLUMNS)
        values = ", ".join(f":{c}" for c in LINE_COLUMNS)
        await conn.execute(
            text(f"INSERT INTO payouts.allocation_lines (allocation_id, {columns}) VALUES (:a, {values})"),
            [{"a": allocation_id, **line} for line in lines],
        )


async def lines(conn: AsyncConnection, allocation_id: uuid.UUID, participant_id: str | None = None) -> list[Any]:
    return list(
        (
            await conn.execute(
                text(
                    "SELECT * FROM payouts.allocation_lines WHERE allocation_id = :a "
                    "AND (CAST(:p AS text) IS NULL OR participant_id = :p) ORDER BY model_id"
                ),
                {"a": allocation_id, "p": participant_id},
            )
        ).all()
    )


async def lock_round(conn: AsyncConnection, tournament_id: str, round_number: int) -> None:
    """Serialise allocations of one round (two concurrent first calls must not both write)."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"payouts-allocation:{tournament_id}:{round_number}"},
    )


async def open_lines(conn: AsyncConnection, model_ids: Sequence[str]) -> dict[str, list[uuid.UUID]]:
    """Per model, the allocations of its positive lines that no live batch covers (what a new batch pays)."""
    rows = (
        await conn.execute(
            text(
                """SELECT l.model_id, l.allocation_id FROM payouts.allocation_lines l
            WHERE l.amount > 0 AND l.model_id = ANY(:m)
              AND NOT EXISTS (SELECT 1 FROM payouts.payout_links k
                                JOIN payouts.batches b ON b.batch_id = k.batch_id
                               WHERE k.allocation_id = l.allocation_id AND k.model_id = l.model_id
                                 AND b.state <> 'VOIDED')
            ORDER BY l.model_id, l.allocation_id"""
            ),
            {"m": list(model_ids)},
        )
    ).all()
    found: dict[str, list[uuid.UUID]] = {}
    for row in rows:
        found.setdefault(row.model_id, []).append(row.allocation_id)
    return found


async def model_tournaments(conn: AsyncConnection, model_ids: Sequence[str]) -> dict[str, str]:
    """The tournament of each model that has an allocation line (where its payable balance came from)."""
    rows = (
        await conn.execute(
            text(
                """SELECT DISTINCT ON (l.model_id) l.model_id, a.tournament_id FROM payouts.allocation_lines l
             JOIN payouts.allocations a ON a.allocation_id = l.allocation_id
            WHERE l.model_id = ANY(:m) ORDER BY l.model_id, a.created_at DESC"""
            ),
            {"m": list(model_ids)},
        )
    ).all()
    return {row.model_id: row.tournament_id for row in rows}


async def line_states(conn: AsyncConnection, allocation_id: uuid.UUID) -> list[Any]:
    """Each positive line with its state ('paid', 'in_flight', 'waiting') and the confirmed batch ids."""
    return list(
        (
            await conn.execute(
                text(
                    """SELECT l.model_id, l.participant_id, l.amount,
                  CASE WHEN bool_or(b.state = 'CONFIRMED') THEN 'paid'
                       WHEN bool_or(b.state IN ('PLANNED', 'SIGNED', 'BROADCAST', 'FAILED')) THEN 'in_flight'
                       ELSE 'waiting' END AS state,
                  coalesce(array_agg(b.batch_id::text ORDER BY b.batch_id)
                               FILTER (WHERE b.state = 'CONFIRMED'),
                           '{}') AS confirmed
             FROM payouts.allocation_lines l
             LEFT JOIN payouts.payout_links k ON k.allocation_id = l.allocation_id AND k.model_id = l.model_id
             LEFT JOIN payouts.batches b ON b.batch_id = k.batch_id
            WHERE l.allocation_id = :a AND l.amount > 0
            GROUP BY l.model_id, l.participant_id, l.amount ORDER BY l.model_id"""
                ),
                {"a": allocation_id},
            )
        ).all()
    )


async def unpaid(conn: AsyncConnection) -> list[Any]:
    """Allocations whose round is not yet known to be marked PAID in submissions."""
    return list(
        (await conn.execute(text("SELECT * FROM payouts.allocations WHERE paid_at IS NULL ORDER BY created_at"))).all()
    )


async def for_batch(conn: AsyncConnection, batch_id: uuid.UUID) -> list[Any]:
    return list(
        (
            await conn.execute(
                text(
                    """SELECT DISTINCT a.* FROM payouts.allocations a
             JOIN payouts.payout_links k ON k.allocation_id = a.allocation_id WHERE k.batch_id = :b"""
                ),
                {"b": batch_id},
            )
        ).all()
    )


async def set_paid_batches(conn: AsyncConnection, allocation_id: uuid.UUID, batch_ids: list[str]) -> list[str]:
    """Fix the batch ids sent with MarkRoundPaid once, so a retried call repeats exactly the same request."""
    row = (
        await conn.execute(
            text(
                "UPDATE payouts.allocations SET paid_batch_ids = coalesce(paid_batch_ids, :ids) "
                "WHERE allocation_id = :a "
                "RETURNING paid_batch_ids"
            ),
            {"a": allocation_id, "ids": batch_ids},
        )
    ).one()
    return list(row.paid_batch_ids)


async def set_paid(conn: AsyncConnection, allocation_id: uuid.UUID) -> None:
    await conn.execute(
        text("UPDATE payouts.allocations SET paid_at = coalesce(paid_at, now()) WHERE allocation_id = :a"),
        {"a": allocation_id},
    )


async def traces(
    conn: AsyncConnection,
    participant_id: str,
    tournament_id: str | None,
    round_number: int | None,
    after: list[Any] | None,
    limit: int,
) -> list[Any]:
    """The participant's positive lines, each with the live (non-voided) batch output that pays it."""
    params: dict[str, Any] = {"p": participant_id, "t": tournament_id, "n": round_number, "lim": limit}
    keyset = ""
    if after is not None:
        keyset = "AND (a.tournament_id, a.round_number, l.model_id, a.allocation_id::text) > (:k0, :k1, :k2, :k3)"
        params.update(k0=after[0], k1=after[1], k2=after[2], k3=after[3])
    return list(
        (
            await conn.execute(
                text(
                    f"""SELECT l.participant_id, l.model_id, l.amount, a.allocation_id, a.entry_id,
                   a.tournament_id,
                   a.round_number, o.batch_id, b.state AS batch_state, b.txid, o.vout, o.address,
                   o.amount AS output_amount
              FROM payouts.allocation_lines l
              JOIN payouts.allocations a ON a.allocation_id = l.allocation_id
              LEFT JOIN LATERAL (
                   SELECT k.batch_id FROM payouts.payout_links k
                     JOIN payouts.batches x ON x.batch_id = k.batch_id
                    WHERE k.allocation_id = l.allocation_id AND k.model_id = l.model_id
                      AND x.state <> 'VOIDED'
                    LIMIT 1) live ON true
              LEFT JOIN payouts.batches b ON b.batch_id = live.batch_id
              LEFT JOIN payouts.batch_outputs o ON o.batch_id = live.batch_id AND o.model_id = l.model_id
             WHERE l.participant_id = :p AND l.amount > 0
               AND (CAST(:t AS text) IS NULL OR a.tournament_id = :t)
               AND (CAST(:n AS integer) IS NULL OR a.round_number = :n) {keyset}
             ORDER BY a.tournament_id, a.round_number, l.model_id, a.allocation_id::text LIMIT :lim"""
                ),
                params,
            )
        ).all()
    )
