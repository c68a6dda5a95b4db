"""The hash chain for auditors: its head, and a full recomputation that names the first bad entry.

``verify_chain`` recomputes everything from the stored rows in two streamed passes, each a plain
scan the database can do quickly (no per-entry lookups):

1. links, in chain order: ``SHA-256(prev || seq || content hash || recorded time)`` against each
   stored hash, plus missing sequence numbers, links to missing entries and entries left out of the
   chain;
2. contents, in any order: each entry's content hash recomputed from its fields and postings (with
   account codes) against the stored one, so an edited amount, account, memo or time shows; the
   times copied onto postings (for the as-of indexes) must equal their entry's.

The first bad entry is the one with the lowest sequence number among both passes' findings; postings
without an entry are reported last. A history rewritten with every later hash recomputed is caught
only against a head published earlier (``expected_head``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.payouts.ledger.domain import GENESIS_HASH, chain_hash, content_hash
from services.payouts.ledger.pg import driver
from services.payouts.ledger.records import BalanceMismatch, ChainHead, ChainReport

_LINKS = """
SELECT c.seq, coalesce(c.entry_id, e.id) AS entry_id, c.hash, e.id IS NOT NULL AS present, e.content_hash,
       (extract(epoch FROM e.recorded_at) * 1000000)::bigint AS recorded_us
  FROM payouts.ledger_chain c
  FULL JOIN payouts.ledger_entries e ON e.id = c.entry_id
 WHERE c.seq <= $1 OR c.seq IS NULL
 ORDER BY c.seq NULLS LAST
"""

_CONTENTS = """
SELECT e.id, e.kind, e.memo, e.metadata::text AS metadata,
       (extract(epoch FROM e.effective_at) * 1000000)::bigint AS effective_us,
       e.reverses, e.pending_id, e.content_hash,
       array_agg(p.account_id ORDER BY p.idx) AS account_ids, array_agg(p.amount ORDER BY p.idx) AS amounts,
       coalesce(bool_and(p.effective_at = e.effective_at AND p.recorded_at = e.recorded_at), true)
           AS times_agree
  FROM payouts.ledger_entries e
  LEFT JOIN payouts.ledger_postings p ON p.entry_id = e.id
 GROUP BY e.id
"""

MAX_REPORTED = 1000
"""Content mismatches remembered while scanning; enough to name the earliest of any real tampering."""


@dataclass
class _Finding:
    seq: int | None
    entry_id: uuid.UUID | None
    reason: str
    expected: bytes | None = None
    actual: bytes | None = None


async def chain_head(conn: AsyncConnection) -> ChainHead:
    """The latest committed link; sequence 0 and an empty hash for an empty ledger."""
    connection = await driver(conn)
    row = await connection.fetchrow(
        """SELECT c.seq, c.entry_id, c.hash, e.recorded_at FROM payouts.ledger_chain c
             LEFT JOIN payouts.ledger_entries e ON e.id = c.entry_id ORDER BY c.seq DESC LIMIT 1"""
    )
    if row is None:
        return ChainHead(0, None, "", None)
    return ChainHead(row["seq"], row["entry_id"], bytes(row["hash"]).hex(), row["recorded_at"])


async def _check_links(
    connection: Any, head: ChainHead, expected_head: ChainHead | None, prefetch: int
) -> tuple[int, _Finding | None]:
    """Pass 1: how many links verify from the start, and what stops the first one that does not."""
    previous = GENESIS_HASH
    checked = 0
    async for row in connection.cursor(_LINKS, head.sequence, prefetch=prefetch):
        seq, entry_id = row["seq"], row["entry_id"]
        if seq is None:
            return checked, _Finding(None, entry_id, "the entry is not in the hash chain")
        stored = bytes(row["hash"])
        if seq != checked + 1:
            return checked, _Finding(checked + 1, None, f"the chain jumps from sequence {checked} to {seq}")
        if not row["present"]:
            return checked, _Finding(seq, entry_id, "the chain names an entry that does not exist")
        expected = chain_hash(previous, seq, bytes(row["content_hash"]), row["recorded_us"])
        if expected != stored:
            return checked, _Finding(seq, entry_id, "the stored chain hash does not match", expected, stored)
        if expected_head is not None and seq == expected_head.sequence and stored.hex() != expected_head.hash:
            return checked, _Finding(
                seq,
                entry_id,
                "the chain differs from the published head",
                bytes.fromhex(expected_head.hash),
                stored,
            )
        previous = stored
        checked += 1
    if expected_head is not None and expected_head.sequence > checked:
        return checked, _Finding(
            expected_head.sequence,
            expected_head.entry_id,
            f"the published head {expected_head.sequence} is beyond the end of the chain ({checked})",
        )
    return checked, None


async def _check_contents(connection: Any, prefetch: int) -> dict[uuid.UUID, tuple[bytes, str]]:
    """Pass 2: entries whose content no longer matches their content hash, with the recomputed hash."""
    codes: dict[int, str] = {
        r["id"]: r["code"] for r in await connection.fetch("SELECT id, code FROM payouts.ledger_accounts")
    }
    bad: dict[uuid.UUID, tuple[bytes, str]] = {}
    async for row in connection.cursor(_CONTENTS, prefetch=prefetch):
        ids, amounts = row["account_ids"], row["amounts"]
        metadata = row["metadata"]
        try:
            postings = [(codes[i], a) for i, a in zip(ids, amounts, strict=True)]
        except KeyError:  # a posting on a missing account, or no postings at all (NULL ids)
            postings = []
        digest = content_hash(
            row["id"],
            row["kind"],
            row["memo"],
            {} if metadata == "{}" else json.loads(metadata),
            row["effective_us"],
            postings,
            row["reverses"],
            row["pending_id"],
        )
        if len(bad) >= MAX_REPORTED:
            continue
        if digest != bytes(row["content_hash"]):
            bad[row["id"]] = (digest, "the entry or its postings differ from what its content hash covers")
        elif not row["times_agree"]:
            bad[row["id"]] = (digest, "a posting's effective or recorded time differs from its entry's")
    return bad


async def _content_finding(connection: Any, bad: dict[uuid.UUID, tuple[bytes, str]]) -> _Finding | None:
    """The changed entry earliest in the chain, with the chain hash its stored rows would give."""
    row = await connection.fetchrow(
        """SELECT c.seq, c.entry_id, c.hash,
                  (extract(epoch FROM e.recorded_at) * 1000000)::bigint AS recorded_us,
                  coalesce(prev.hash, $2::bytea) AS previous
             FROM payouts.ledger_chain c
             JOIN payouts.ledger_entries e ON e.id = c.entry_id
             LEFT JOIN payouts.ledger_chain prev ON prev.seq = c.seq - 1
            WHERE c.entry_id = ANY($1::uuid[])
            ORDER BY c.seq LIMIT 1""",
        list(bad),
        GENESIS_HASH,
    )
    if row is None:
        return None
    digest, reason = bad[row["entry_id"]]
    expected = chain_hash(bytes(row["previous"]), row["seq"], digest, row["recorded_us"])
    return _Finding(row["seq"], row["entry_id"], reason, expected, bytes(row["hash"]))


async def verify_chain(
    conn: AsyncConnection, *, expected_head: ChainHead | None = None, prefetch: int = 10_000
) -> ChainReport:
    """Recompute the chain up to the current head; ``ok`` or the first entry that does not match."""
    connection = await driver(conn)
    head = await chain_head(conn)
    work_mem = await connection.fetchval("SELECT set_config('work_mem', '256MB', true)")
    checked, link = await _check_links(connection, head, expected_head, prefetch)
    changed = await _check_contents(connection, prefetch)
    await connection.execute("SELECT set_config('work_mem', $1, true)", work_mem)
    content = await _content_finding(connection, changed) if changed else None
    findings = [f for f in (link, content) if f is not None]
    if findings:
        first = min(findings, key=lambda f: (f.seq is None, f.seq or 0))
        return ChainReport(
            False,
            min(checked, (first.seq or checked + 1) - 1),
            head,
            first.entry_id,
            first.seq,
            first.reason,
            first.expected.hex() if first.expected else "",
            first.actual.hex() if first.actual else "",
        )
    orphan = await connection.fetchval(
        """SELECT p.entry_id FROM payouts.ledger_postings p
            WHERE NOT EXISTS (SELECT 1 FROM payouts.ledger_entries e WHERE e.id = p.entry_id) LIMIT 1"""
    )
    if orphan is not None:
        return ChainReport(False, checked, head, orphan, None, "postings exist for an entry that does not")
    return ChainReport(True, checked, head)


async def check_balances(conn: AsyncConnection) -> list[BalanceMismatch]:
    """Accounts whose stored current balance is not the sum of their postings (empty when all agree)."""
    connection = await driver(conn)
    rows = await connection.fetch(
        """
        SELECT a.code, b.balance, coalesce(s.total, 0)::bigint AS computed
          FROM payouts.ledger_balances b
          JOIN payouts.ledger_accounts a ON a.id = b.account_id
          LEFT JOIN (SELECT account_id, sum(amount) AS total
                       FROM payouts.ledger_postings GROUP BY account_id) s
            ON s.account_id = b.account_id
         WHERE b.balance <> coalesce(s.total, 0)
         ORDER BY a.code
        """
    )
    return [BalanceMismatch(r["code"], r["balance"], r["computed"]) for r in rows]
