"""Two-phase transfers for payouts in flight: reserve, then post (fully or partly) or void, once.

A reservation of ``amount`` from ``debit`` to ``credit`` is an ordinary balanced entry (kind
``pending.reserve``) that moves the amount from the debit account into a ``holding`` account, so the
debit account's limit is checked when the money is reserved and cannot be reserved twice. Posting is
a second entry (``pending.post``) that moves it from the holding account to the final credit
account (any part not posted returns to the debit account); voiding (``pending.void``) moves it all
back. Every step is a normal entry, so balances, limits and the hash chain need no special case.

``ledger_pending`` records the state (PENDING -> POSTED | VOIDED). Settling locks its row first
(``FOR UPDATE``, rows in id order for a batch), so two settlements of one reservation serialise and
the second finds it resolved; a trigger refuses any other state change. Retrying with the same
entry id returns the first outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from services.payouts.ledger.domain import (
    KIND_PENDING,
    KIND_POST_PENDING,
    KIND_VOID_PENDING,
    EntryDraft,
    EntrySpec,
    IdempotencyConflict,
    PendingState,
    PostingSpec,
    require_code,
    require_uuid,
    same_request,
    settle_postings,
    validate_entry,
)
from services.payouts.ledger.pg import abort_transaction, driver, translated
from services.payouts.ledger.posting import append_drafts
from services.payouts.ledger.records import PendingTransfer
from shared.errors import FailedPrecondition, InvalidArgument, NotFound
from shared.money import require_satoshis


@dataclass(frozen=True, slots=True)
class Reservation:
    pending_id: uuid.UUID
    entry_id: uuid.UUID
    debit: str
    credit: str
    holding: str
    amount: int
    memo: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    effective_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """Post (``void=False``; ``amount`` None = all of it) or void a reservation, with the entry's id."""

    pending_id: uuid.UUID
    entry_id: uuid.UUID
    void: bool = False
    amount: int | None = None
    memo: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    effective_at: datetime | None = None


_PENDING_COLUMNS = """
    pd.id, pd.reserve_entry_id, d.code AS debit, c.code AS credit, h.code AS holding, pd.amount, pd.state,
    pd.resolved_by, pd.posted_amount, pd.created_at, pd.resolved_at
"""
_PENDING_FROM = """
    FROM payouts.ledger_pending pd
    JOIN payouts.ledger_accounts d ON d.id = pd.debit_account_id
    JOIN payouts.ledger_accounts c ON c.id = pd.credit_account_id
    JOIN payouts.ledger_accounts h ON h.id = pd.holding_account_id
"""

_INSERT_PENDING = """
INSERT INTO payouts.ledger_pending (id, reserve_entry_id, debit_account_id, credit_account_id,
                                    holding_account_id, amount)
SELECT t.id, t.entry_id, d.id, c.id, h.id, t.amount
  FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int8[])
       AS t(id, entry_id, debit, credit, holding, amount)
  JOIN payouts.ledger_accounts d ON d.code = t.debit
  JOIN payouts.ledger_accounts c ON c.code = t.credit
  JOIN payouts.ledger_accounts h ON h.code = t.holding
"""


def _record(row: Any) -> PendingTransfer:
    return PendingTransfer(
        pending_id=row["id"],
        reserve_entry_id=row["reserve_entry_id"],
        debit=row["debit"],
        credit=row["credit"],
        holding=row["holding"],
        amount=row["amount"],
        state=PendingState(row["state"]),
        resolved_by=row["resolved_by"],
        posted_amount=row["posted_amount"],
        created_at=row["created_at"],
        resolved_at=row["resolved_at"],
    )


async def _load(connection: asyncpg.Connection, ids: Sequence[uuid.UUID], *, lock: bool) -> dict[uuid.UUID, Any]:
    locking = "ORDER BY pd.id FOR UPDATE OF pd" if lock else ""
    rows = await connection.fetch(
        f"SELECT {_PENDING_COLUMNS} {_PENDING_FROM} WHERE pd.id = ANY($1::uuid[]) {locking}", list(ids)
    )
    return {row["id"]: row for row in rows}


def _reservation_draft(item: Reservation, now: datetime) -> EntryDraft:
    pending_id = require_uuid(item.pending_id, "pending_id")
    codes = {name: require_code(getattr(item, name), name) for name in ("debit", "credit", "holding")}
    if len(set(codes.values())) != 3:
        raise InvalidArgument(
            f"pending {pending_id}: debit, credit and holding must be three different accounts",
            metadata={"field": "holding"},
        )
    amount = require_satoshis(item.amount, f"pending {pending_id} amount", allow_zero=False)
    spec = EntrySpec(
        id=item.entry_id,
        kind=KIND_PENDING,
        postings=(PostingSpec(codes["debit"], amount), PostingSpec(codes["holding"], -amount)),
        memo=item.memo,
        metadata=item.metadata,
        effective_at=item.effective_at,
    )
    return validate_entry(spec, now=now, allow_reserved_kind=True, pending_id=pending_id)


async def reserve_many(conn: AsyncConnection, reservations: Sequence[Reservation]) -> list[PendingTransfer]:
    """Reserve several transfers in one batch (all or nothing); retries return the first outcome."""
    now = datetime.now(UTC)
    drafts = [_reservation_draft(item, now) for item in reservations]
    by_pending: dict[uuid.UUID, Reservation] = {}
    for item in reservations:
        if item.pending_id in by_pending and by_pending[item.pending_id] != item:
            raise IdempotencyConflict(
                f"pending id {item.pending_id} appears twice in this batch with different content",
                metadata={"pending_id": str(item.pending_id)},
            )
        by_pending[item.pending_id] = item
    if not drafts:
        return []
    connection = await driver(conn)
    existing = await _load(connection, list(by_pending), lock=False)
    for pending_id, row in existing.items():
        if row["reserve_entry_id"] != by_pending[pending_id].entry_id:
            raise IdempotencyConflict(
                f"pending id {pending_id} is already used by reservation entry {row['reserve_entry_id']}",
                metadata={"pending_id": str(pending_id)},
            )
    results = await append_drafts(connection, drafts)
    new = [
        item
        for item, result in zip(reservations, results, strict=True)
        if result.created and item.pending_id not in existing
    ]
    new = list({item.pending_id: item for item in new}.values())
    if new:
        async with translated():
            await connection.execute(
                _INSERT_PENDING,
                [i.pending_id for i in new],
                [i.entry_id for i in new],
                [i.debit for i in new],
                [i.credit for i in new],
                [i.holding for i in new],
                [i.amount for i in new],
            )
    rows = await _load(connection, list(by_pending), lock=False)
    missing = [item.pending_id for item in reservations if item.pending_id not in rows]
    if missing:
        await abort_transaction(connection)
        raise IdempotencyConflict(
            f"reservation entry ids are already used by other entries (pending {missing[0]}); use new ids",
            metadata={"pending_id": str(missing[0])},
        )
    return [_record(rows[item.pending_id]) for item in reservations]


async def reserve(conn: AsyncConnection, reservation: Reservation) -> PendingTransfer:
    return (await reserve_many(conn, [reservation]))[0]


def _settlement_draft(item: Settlement, row: Any, now: datetime) -> tuple[EntryDraft, int]:
    reserved = row["amount"]
    if item.void:
        if item.amount not in (None, 0):
            raise InvalidArgument(f"pending {item.pending_id}: a void takes no amount", metadata={"field": "amount"})
        amount = 0
    else:
        amount = reserved if item.amount is None else item.amount
        if amount == 0:
            raise InvalidArgument(
                f"pending {item.pending_id}: posting 0 sat is a void; use void_pending",
                metadata={"field": "amount"},
            )
    postings = settle_postings(
        holding=row["holding"], debit=row["debit"], credit=row["credit"], reserved=reserved, amount=amount
    )
    spec = EntrySpec(
        id=item.entry_id,
        kind=KIND_VOID_PENDING if item.void else KIND_POST_PENDING,
        postings=postings,
        memo=item.memo,
        metadata=item.metadata,
        effective_at=item.effective_at,
    )
    return validate_entry(spec, now=now, allow_reserved_kind=True, pending_id=row["id"]), amount


async def settle_many(conn: AsyncConnection, settlements: Sequence[Settlement]) -> list[PendingTransfer]:
    """Post or void several reservations atomically (e.g. every output of a confirmed payout batch)."""
    ids = [require_uuid(item.pending_id, "pending_id") for item in settlements]
    if len(set(ids)) != len(ids):
        raise InvalidArgument("a reservation appears twice in one settlement batch", metadata={"field": "pending_id"})
    if not settlements:
        return []
    connection = await driver(conn)
    async with translated():
        rows = await _load(connection, ids, lock=True)
    now = datetime.now(UTC)
    drafts: list[EntryDraft] = []
    todo: list[tuple[Settlement, int]] = []
    for item in settlements:
        row = rows.get(item.pending_id)
        if row is None:
            raise NotFound(f"pending {item.pending_id} does not exist", metadata={"pending_id": str(item.pending_id)})
        draft, amount = _settlement_draft(item, row, now)
        if row["state"] != PendingState.PENDING:
            await _check_replay(connection, item, row, draft)
            continue
        drafts.append(draft)
        todo.append((item, amount))
    if drafts:
        results = await append_drafts(connection, drafts)
        if not all(result.created for result in results):
            await abort_transaction(connection)
            raise IdempotencyConflict("a settlement's entry id is already used by another entry; use a new id")
        async with translated():
            await connection.executemany(
                """UPDATE payouts.ledger_pending SET state = $2, resolved_by = $3, posted_amount = $4
                    WHERE id = $1""",
                [
                    (
                        item.pending_id,
                        PendingState.VOIDED.value if item.void else PendingState.POSTED.value,
                        item.entry_id,
                        amount,
                    )
                    for item, amount in todo
                ],
            )
    final = await _load(connection, ids, lock=False)
    return [_record(final[item.pending_id]) for item in settlements]


async def _check_replay(connection: asyncpg.Connection, item: Settlement, row: Any, draft: EntryDraft) -> None:
    """A resolved reservation: fine if this very settlement resolved it (a retry), else refused."""
    if row["resolved_by"] != item.entry_id:
        raise FailedPrecondition(
            f"pending {item.pending_id} was already {row['state']} by entry {row['resolved_by']}; it resolves once",
            metadata={"pending_id": str(item.pending_id), "state": row["state"]},
        )
    stored = await connection.fetchrow(
        "SELECT content_hash, effective_at FROM payouts.ledger_entries WHERE id = $1", item.entry_id
    )
    if stored is None or not same_request(draft, bytes(stored["content_hash"]), stored["effective_at"]):
        raise IdempotencyConflict(
            f"entry id {item.entry_id} already settled pending {item.pending_id} with different content",
            metadata={"entry_id": str(item.entry_id)},
        )


async def post_pending(
    conn: AsyncConnection,
    pending_id: uuid.UUID,
    entry_id: uuid.UUID,
    *,
    amount: int | None = None,
    memo: str = "",
    metadata: Mapping[str, str] | None = None,
    effective_at: datetime | None = None,
) -> PendingTransfer:
    """Complete a reservation: ``amount`` (default all) to the credit account, the rest back to debit."""
    item = Settlement(pending_id, entry_id, False, amount, memo, dict(metadata or {}), effective_at)
    return (await settle_many(conn, [item]))[0]


async def void_pending(
    conn: AsyncConnection,
    pending_id: uuid.UUID,
    entry_id: uuid.UUID,
    *,
    memo: str = "",
    metadata: Mapping[str, str] | None = None,
    effective_at: datetime | None = None,
) -> PendingTransfer:
    """Cancel a reservation: the whole amount returns to the debit account."""
    item = Settlement(pending_id, entry_id, True, None, memo, dict(metadata or {}), effective_at)
    return (await settle_many(conn, [item]))[0]


async def get_pending(conn: AsyncConnection, pending_id: uuid.UUID) -> PendingTransfer:
    pending_id = require_uuid(pending_id, "pending_id")
    rows = await _load(await driver(conn), [pending_id], lock=False)
    if pending_id not in rows:
        raise NotFound(f"pending {pending_id} does not exist", metadata={"pending_id": str(pending_id)})
    return _record(rows[pending_id])
