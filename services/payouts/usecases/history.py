"""Reading batches and payout history: a batch with its outputs and rounds, a participant's payouts, traces.

A trace follows one allocation line (a model's share of a round) to the live batch output that pays
it: allocation -> batch -> txid -> output index. Lines under the dust limit, or whose batch was
voided, show no batch until a later batch pays them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.payouts.store import allocations as alloc_repo
from services.payouts.store import batches as repo
from shared.db import Database
from shared.errors import InvalidArgument, NotFound
from shared.pagination import decode_token, encode_token, page_size

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass
class BatchView:
    row: Any
    outputs: list[Any]
    allocations: dict[str, list[str]] = field(default_factory=dict)
    """model id -> allocation ids its output pays."""
    rounds: list[tuple[str, int]] = field(default_factory=list)
    replaced_txids: list[str] = field(default_factory=list)


async def views(conn: AsyncConnection, rows: list[Any]) -> list[BatchView]:
    batch_ids = [row.batch_id for row in rows]
    outputs = await repo.outputs(conn, batch_ids)
    links = await repo.links(conn, batch_ids)
    rounds = await repo.rounds(conn, batch_ids)
    replaced: dict[uuid.UUID, list[str]] = {b: [] for b in batch_ids}
    for tx in await repo.transactions(conn, batch_ids):
        if tx.replaced_by is not None:
            replaced[tx.batch_id].append(tx.txid)
    return [
        BatchView(
            row,
            outputs[row.batch_id],
            {o.model_id: links.get((row.batch_id, o.model_id), []) for o in outputs[row.batch_id]},
            rounds[row.batch_id],
            replaced[row.batch_id],
        )
        for row in rows
    ]


async def batch_views(database: Database, batch_ids: list[uuid.UUID]) -> list[BatchView]:
    async with database.connect() as conn:
        rows = []
        for batch_id in batch_ids:
            row = await repo.get(conn, batch_id)
            if row is None:
                raise NotFound(f"batch {batch_id} not found", metadata={"batch_id": str(batch_id)})
            rows.append(row)
        return await views(conn, rows)


async def list_batches(
    database: Database,
    *,
    state: str | None,
    tournament_id: str | None,
    round_number: int | None,
    size: int,
    token: str,
) -> tuple[list[BatchView], str]:
    filters = ["batches", state, tournament_id, round_number]
    before = decode_token(token, filters)
    if before is not None and not isinstance(before, int):
        raise InvalidArgument("page_token is not a token this service issued", metadata={"field": "page_token"})
    limit = page_size(size)
    async with database.connect() as conn:
        rows = await repo.page(
            conn,
            state=state,
            tournament_id=tournament_id,
            round_number=round_number,
            before=before,
            limit=limit + 1,
        )
        found = await views(conn, rows[:limit])
    next_token = encode_token(rows[limit - 1].seq, filters) if len(rows) > limit else ""
    return found, next_token


async def payouts(database: Database, participant_id: str, size: int, token: str) -> tuple[list[Any], str]:
    filters = ["payouts", participant_id]
    before = decode_token(token, filters)
    if before is not None and (not isinstance(before, list) or len(before) != 2):
        raise InvalidArgument("page_token is not a token this service issued", metadata={"field": "page_token"})
    limit = page_size(size)
    async with database.connect() as conn:
        rows = await repo.payouts_of(conn, participant_id, before, limit + 1)
        rounds = await repo.rounds(conn, list({row.batch_id for row in rows[:limit]}))
    last = rows[limit - 1] if len(rows) > limit else None
    return [(row, rounds.get(row.batch_id, [])) for row in rows[:limit]], (
        encode_token([last.seq, last.position], filters) if last is not None else ""
    )


async def traces(
    database: Database,
    participant_id: str,
    tournament_id: str | None,
    round_number: int | None,
    size: int,
    token: str,
) -> tuple[list[Any], str]:
    filters = ["traces", participant_id, tournament_id, round_number]
    after = decode_token(token, filters)
    if after is not None and (not isinstance(after, list) or len(after) != 4):
        raise InvalidArgument("page_token is not a token this service issued", metadata={"field": "page_token"})
    limit = page_size(size)
    async with database.connect() as conn:
        rows = await alloc_repo.traces(conn, participant_id, tournament_id, round_number, after, limit + 1)
    last = rows[limit - 1] if len(rows) > limit else None
    token_out = (
        encode_token([last.tournament_id, last.round_number, last.model_id, str(last.allocation_id)], filters)
        if last is not None
        else ""
    )
    return rows[:limit], token_out
