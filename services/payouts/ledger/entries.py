"""Reading entries: one by id, a filtered listing in chain order, and a CSV export.

Listings are ordered by chain sequence and paged by it (keyset, opaque token). The sequence is
assigned at commit, so an entry committed while a client pages through always lands after the
cursor: pages never skip or repeat, even under concurrent writes.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.payouts.ledger.balances import time_column
from services.payouts.ledger.domain import (
    KIND_PENDING,
    KIND_POST_PENDING,
    KIND_VOID_PENDING,
    PendingState,
    TimeBasis,
    require_code,
    require_time,
    require_uuid,
)
from services.payouts.ledger.pg import driver
from services.payouts.ledger.records import Entry, Page, Posting
from shared.errors import InvalidArgument, NotFound
from shared.pagination import decode_token, encode_token
from shared.pagination import page_size as clamp_page_size

_ENTRY_COLUMNS = """
    c.seq, c.hash, prev.hash AS previous_hash, e.id, e.kind, e.memo, e.metadata::text AS metadata,
    e.effective_at, e.recorded_at, e.reverses, e.pending_id, e.content_hash,
    pd.reserve_entry_id, pd.state AS pending_state, l.codes, l.amounts
"""
_ENTRY_JOINS = """
    LEFT JOIN payouts.ledger_chain prev ON prev.seq = c.seq - 1
    LEFT JOIN payouts.ledger_pending pd ON pd.id = e.pending_id
    CROSS JOIN LATERAL (
        SELECT array_agg(a.code ORDER BY p.idx) AS codes, array_agg(p.amount ORDER BY p.idx) AS amounts
          FROM payouts.ledger_postings p JOIN payouts.ledger_accounts a ON a.id = p.account_id
         WHERE p.entry_id = e.id) l
"""

CSV_HEADER = [
    "sequence",
    "entry_id",
    "kind",
    "effective_at",
    "recorded_at",
    "posting_index",
    "account_code",
    "amount_satoshis",
    "memo",
    "metadata",
    "reverses_entry_id",
    "pending_id",
    "content_hash",
    "previous_hash",
    "hash",
]


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Filters of ListEntries and ExportEntries; times are a half-open range [start, end) on ``basis``."""

    account_code: str = ""
    kind: str = ""
    start: datetime | None = None
    end: datetime | None = None
    basis: TimeBasis = TimeBasis.EFFECTIVE

    def checked(self) -> EntryFilter:
        if self.account_code:
            require_code(self.account_code, "account_code")
        start = require_time(self.start, "start_time") if self.start is not None else None
        end = require_time(self.end, "end_time") if self.end is not None else None
        if start is not None and end is not None and start >= end:
            raise InvalidArgument("start_time must be before end_time", metadata={"field": "start_time"})
        time_column(self.basis)
        return self

    def fingerprint(self) -> dict[str, str]:
        return {
            "account": self.account_code,
            "kind": self.kind,
            "start": str(self.start),
            "end": str(self.end),
            "basis": TimeBasis(self.basis).value,
        }


def _hex(value: Any) -> str:
    return bytes(value).hex() if value is not None else ""


def entry_from_row(row: Any) -> Entry:
    kind = row["kind"]
    settles = row["reserve_entry_id"] if kind in (KIND_POST_PENDING, KIND_VOID_PENDING) else None
    return Entry(
        entry_id=row["id"],
        sequence=row["seq"],
        kind=kind,
        memo=row["memo"],
        metadata=json.loads(row["metadata"]),
        effective_at=row["effective_at"],
        recorded_at=row["recorded_at"],
        postings=[Posting(code, amount) for code, amount in zip(row["codes"] or [], row["amounts"] or [], strict=True)],
        pending=kind == KIND_PENDING and row["pending_state"] == PendingState.PENDING,
        settles_entry_id=settles,
        reverses_entry_id=row["reverses"],
        pending_id=row["pending_id"],
        content_hash=_hex(row["content_hash"]),
        previous_hash=_hex(row["previous_hash"]),
        hash=_hex(row["hash"]),
    )


async def get_entry(conn: AsyncConnection, entry_id: uuid.UUID | str) -> Entry:
    entry_id = require_uuid(entry_id, "entry_id")
    connection = await driver(conn)
    row = await connection.fetchrow(
        f"""SELECT {_ENTRY_COLUMNS} FROM payouts.ledger_entries e
            LEFT JOIN payouts.ledger_chain c ON c.entry_id = e.id {_ENTRY_JOINS} WHERE e.id = $1""",
        entry_id,
    )
    if row is None:
        raise NotFound(f"entry {entry_id} does not exist", metadata={"entry_id": str(entry_id)})
    return entry_from_row(row)


async def _selection(connection: Any, flt: EntryFilter, after: int) -> tuple[str, list[Any]]:
    """SQL selecting (seq, entry_id) of matching entries after ``after``, with only the active filters.

    Each combination of filters is its own statement text, so PostgreSQL plans each for its indexes.
    """
    column = time_column(flt.basis)
    args: list[Any] = [after]
    where = ["c.seq > $1"]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if flt.account_code:
        account_id = await connection.fetchval(
            "SELECT id FROM payouts.ledger_accounts WHERE code = $1", flt.account_code
        )
        if account_id is None:
            raise NotFound(f"account {flt.account_code} does not exist", metadata={"account_code": flt.account_code})
        source = "payouts.ledger_postings t JOIN payouts.ledger_chain c ON c.entry_id = t.entry_id"
        where.append(f"t.account_id = {arg(account_id)}")
        if flt.kind:
            source += " JOIN payouts.ledger_entries e ON e.id = t.entry_id"
    else:
        source = "payouts.ledger_chain c JOIN payouts.ledger_entries t ON t.id = c.entry_id"
    if flt.kind:
        where.append(f"{'e' if flt.account_code else 't'}.kind = {arg(flt.kind)}")
    if flt.start is not None:
        where.append(f"t.{column} >= {arg(flt.start)}")
    if flt.end is not None:
        where.append(f"t.{column} < {arg(flt.end)}")
    return f"SELECT c.seq, c.entry_id FROM {source} WHERE {' AND '.join(where)} ORDER BY c.seq", args


async def list_entries(
    conn: AsyncConnection, flt: EntryFilter | None = None, *, page_size: int = 0, page_token: str = ""
) -> Page[Entry]:
    """Committed entries matching ``flt`` in chain order, one page at a time."""
    flt = (flt or EntryFilter()).checked()
    after = decode_token(page_token, flt.fingerprint()) or 0
    if not isinstance(after, int):
        raise InvalidArgument("page_token is not a token this service issued", metadata={"field": "page_token"})
    size = clamp_page_size(page_size)
    connection = await driver(conn)
    selection, args = await _selection(connection, flt, after)
    args.append(size + 1)
    rows = await connection.fetch(
        f"""WITH page AS ({selection} LIMIT ${len(args)})
            SELECT {_ENTRY_COLUMNS} FROM page JOIN payouts.ledger_chain c ON c.seq = page.seq
              JOIN payouts.ledger_entries e ON e.id = page.entry_id {_ENTRY_JOINS}
             ORDER BY c.seq""",
        *args,
    )
    entries = [entry_from_row(row) for row in rows[:size]]
    token = encode_token(entries[-1].sequence, flt.fingerprint()) if len(rows) > size else ""
    return Page(entries, token)


def _csv_lines(entry: Entry) -> list[list[str]]:
    return [
        [
            str(entry.sequence),
            str(entry.entry_id),
            entry.kind,
            entry.effective_at.isoformat(),
            entry.recorded_at.isoformat(),
            str(index),
            posting.account_code,
            str(posting.amount),
            entry.memo,
            json.dumps(entry.metadata, sort_keys=True, ensure_ascii=False),
            str(entry.reverses_entry_id or ""),
            str(entry.pending_id or ""),
            entry.content_hash,
            entry.previous_hash,
            entry.hash,
        ]
        for index, posting in enumerate(entry.postings)
    ]


async def export_entries_csv(
    conn: AsyncConnection, flt: EntryFilter | None = None, *, chunk_lines: int = 2000
) -> AsyncIterator[str]:
    """Matching entries as CSV text, one line per posting, in chain order; chunks hold whole lines.

    Rows stream through a server-side cursor, so an export of millions of postings uses little memory.
    """
    flt = (flt or EntryFilter()).checked()
    connection = await driver(conn)
    selection, args = await _selection(connection, flt, 0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    lines = 1
    query = f"""WITH page AS ({selection})
                SELECT {_ENTRY_COLUMNS} FROM page JOIN payouts.ledger_chain c ON c.seq = page.seq
                  JOIN payouts.ledger_entries e ON e.id = page.entry_id {_ENTRY_JOINS}
                 ORDER BY c.seq"""
    async for row in connection.cursor(query, *args, prefetch=1000):
        rows = _csv_lines(entry_from_row(row))
        writer.writerows(rows)
        lines += len(rows)
        if lines >= chunk_lines:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            lines = 0
    if buffer.tell():
        yield buffer.getvalue()
