"""Writing entries: one, a batch (all or nothing), and reversals.

A batch is one call of ``payouts.ledger_append`` (see ``ddl.py``): the entries and their postings go
in as arrays, so 100 transfers cost one round trip and no planning. The database then does the rest:
it checks and updates balances under ordered row locks when the postings land, and checks the sums
and appends to the hash chain at COMMIT.

Idempotency: the entry id is the key. ``ON CONFLICT DO NOTHING`` skips ids already stored (also by
a concurrent writer, whose commit it waits for); each skipped entry is compared with the request and
either returned as it was first written (``created=False``) or refused with ALREADY_EXISTS. Repeats
inside one batch are handled the same way before anything is written.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NoReturn

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from services.payouts.ledger.domain import (
    KIND_PENDING,
    KIND_REVERSAL,
    EntryDraft,
    EntrySpec,
    IdempotencyConflict,
    dedupe_batch,
    require_uuid,
    reversal_postings,
    same_request,
    validate_entry,
)
from services.payouts.ledger.pg import abort_transaction, driver, translated
from services.payouts.ledger.records import PostResult
from shared.errors import FailedPrecondition, InvalidArgument, NotFound

MAX_BATCH = 10_000

_APPEND = """
SELECT id, recorded_at, legs
  FROM payouts.ledger_append($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::uuid[],
                             $7::uuid[], $8::bytea[], $9::uuid[], $10::int2[], $11::text[], $12::int8[])
"""

_STORED = """
SELECT id, content_hash, effective_at, recorded_at FROM payouts.ledger_entries WHERE id = ANY($1::uuid[])
"""


def _now() -> datetime:
    return datetime.now(UTC)


def new_entry_id() -> uuid.UUID:
    """A fresh entry id: a time-ordered UUID (version 7, RFC 9562), the recommended kind.

    Ids made close together sort together, so the entry, posting and chain indexes grow at their right
    edge and stay densely packed; random (version 4) ids split pages all over those indexes, which costs
    about a tenth more space and random I/O once they outgrow memory. Any UUID is accepted.
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a, rand_b = rand >> 68, rand & ((1 << 62) - 1)
    return uuid.UUID(int=(millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


def _arguments(drafts: Sequence[EntryDraft]) -> list[object]:
    posting_entries: list[uuid.UUID] = []
    posting_idx: list[int] = []
    posting_codes: list[str] = []
    posting_amounts: list[int] = []
    for draft in drafts:
        for index, posting in enumerate(draft.postings):
            posting_entries.append(draft.id)
            posting_idx.append(index)
            posting_codes.append(posting.account)
            posting_amounts.append(posting.amount)
    return [
        [d.id for d in drafts],
        [d.effective_at for d in drafts],
        [d.kind for d in drafts],
        [d.memo for d in drafts],
        [json.dumps(d.metadata, sort_keys=True) for d in drafts],
        [d.reverses for d in drafts],
        [d.pending_id for d in drafts],
        [d.content_hash for d in drafts],
        posting_entries,
        posting_idx,
        posting_codes,
        posting_amounts,
    ]


async def _refuse(connection: asyncpg.Connection, error: Exception) -> NoReturn:
    """Fail the transaction, then raise: part of the batch may already be written and must not commit."""
    await abort_transaction(connection)
    raise error


async def append_drafts(connection: asyncpg.Connection, drafts: Sequence[EntryDraft]) -> list[PostResult]:
    """Store validated drafts in one statement; the results follow the order of ``drafts``."""
    distinct, mapping = dedupe_batch(drafts)
    async with translated():
        rows = await connection.fetch(_APPEND, *_arguments(distinct))
    created = {row["id"]: row["recorded_at"] for row in rows}
    legs_written = rows[0]["legs"] if rows else 0
    legs_wanted = sum(len(d.postings) for d in distinct if d.id in created)
    if legs_written != legs_wanted:
        await _refuse(connection, await _missing_accounts(connection, distinct))
    results: dict[uuid.UUID, PostResult] = {}
    for draft in distinct:
        if draft.id in created:
            results[draft.id] = PostResult(
                draft.id, draft.effective_at, created[draft.id], draft.content_hash.hex(), True
            )
    skipped = [d for d in distinct if d.id not in created]
    if skipped:
        stored = {row["id"]: row for row in await connection.fetch(_STORED, [d.id for d in skipped])}
        for draft in skipped:
            row = stored.get(draft.id)
            if row is None:  # ON CONFLICT skips only committed rows, which are visible now: be loud anyway
                await _refuse(connection, FailedPrecondition(f"entry {draft.id} was not written; retry"))
            if not same_request(draft, bytes(row["content_hash"]), row["effective_at"]):
                await _refuse(
                    connection,
                    IdempotencyConflict(
                        f"entry id {draft.id} was already used for an entry with different content; "
                        "a retry must send exactly the same entry, and a new entry needs a new id",
                        metadata={"entry_id": str(draft.id)},
                    ),
                )
            results[draft.id] = PostResult(
                draft.id, row["effective_at"], row["recorded_at"], bytes(row["content_hash"]).hex(), False
            )
    return [results[distinct[slot].id] for slot in mapping]


async def _missing_accounts(connection: asyncpg.Connection, drafts: Sequence[EntryDraft]) -> Exception:
    codes = sorted({p.account for d in drafts for p in d.postings})
    known = {
        row["code"]
        for row in await connection.fetch(
            "SELECT code FROM payouts.ledger_accounts WHERE code = ANY($1::text[])", codes
        )
    }
    for draft in drafts:
        for index, posting in enumerate(draft.postings):
            if posting.account not in known:
                return NotFound(
                    f"entry {draft.id} postings[{index}]: account {posting.account} does not exist; open it first",
                    metadata={"entry_id": str(draft.id), "account_code": posting.account},
                )
    return FailedPrecondition("some postings were not written; retry")


async def post_entries(conn: AsyncConnection, specs: Sequence[EntrySpec]) -> list[PostResult]:
    """Write a batch of entries atomically within the caller's transaction; results in request order.

    Nothing of the batch is kept if any entry is refused: the error is raised before writing, or the
    transaction is failed so it cannot commit.
    """
    if len(specs) > MAX_BATCH:
        raise InvalidArgument(
            f"a batch holds at most {MAX_BATCH} entries (got {len(specs)}); split it",
            metadata={"field": "entries"},
        )
    now = _now()
    drafts = [validate_entry(spec, now=now) for spec in specs]
    if not drafts:
        return []
    return await append_drafts(await driver(conn), drafts)


async def post_entry(conn: AsyncConnection, spec: EntrySpec) -> PostResult:
    return (await post_entries(conn, [spec]))[0]


async def reverse_entry(
    conn: AsyncConnection,
    entry_id: uuid.UUID,
    original_id: uuid.UUID,
    *,
    memo: str = "",
    metadata: dict[str, str] | None = None,
    effective_at: datetime | None = None,
) -> PostResult:
    """Undo an entry with a new one that posts the opposite amounts and references it.

    An entry is reversed at most once (a unique index), and a reservation is voided rather than
    reversed, so the two-phase state cannot disagree with the balances.
    """
    entry_id = require_uuid(entry_id, "entry id")
    original_id = require_uuid(original_id, "original entry id")
    connection = await driver(conn)
    original = await connection.fetchrow(
        """
        SELECT e.kind,
               ARRAY(SELECT a.code FROM payouts.ledger_postings p
                       JOIN payouts.ledger_accounts a ON a.id = p.account_id
                      WHERE p.entry_id = e.id ORDER BY p.idx) AS codes,
               ARRAY(SELECT p.amount FROM payouts.ledger_postings p
                      WHERE p.entry_id = e.id ORDER BY p.idx) AS amounts,
               (SELECT r.id FROM payouts.ledger_entries r WHERE r.reverses = e.id) AS reversed_by
          FROM payouts.ledger_entries e WHERE e.id = $1
        """,
        original_id,
    )
    if original is None:
        raise NotFound(f"entry {original_id} does not exist", metadata={"entry_id": str(original_id)})
    if original["kind"] == KIND_PENDING:
        raise FailedPrecondition(f"entry {original_id} is a reservation; void it instead of reversing it")
    if original["reversed_by"] is not None and original["reversed_by"] != entry_id:
        raise FailedPrecondition(
            f"entry {original_id} was already reversed by entry {original['reversed_by']}; it reverses once",
            metadata={"entry_id": str(original_id)},
        )
    spec = EntrySpec(
        id=entry_id,
        kind=KIND_REVERSAL,
        postings=reversal_postings(list(zip(original["codes"], original["amounts"], strict=True))),
        memo=memo,
        metadata=metadata or {},
        effective_at=effective_at,
    )
    draft = validate_entry(spec, now=_now(), allow_reserved_kind=True, reverses=original_id)
    return (await append_drafts(connection, [draft]))[0]
