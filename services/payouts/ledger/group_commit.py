"""Group commit: concurrent single entries share one transaction, each failing alone.

Why: a transaction that writes the ledger holds the chain head row from its append to the end of its
COMMIT, so single-entry transactions from many clients queue behind one another's WAL flush, one
flush per entry. ``GroupCommit.post`` instead queues the entry; one task per ``GroupCommit`` writes
whatever has queued up in one transaction (one flush, one chain append for the group) while the next
group queues behind it. Under no load a group is one entry and nothing waits.

How a group is written, inside its one transaction:

* fast path: every entry in one ``ledger_append`` call under a savepoint. One statement locks all the
  touched balance rows in account order, so two groups never deadlock, and the chain is appended in
  one pass at COMMIT, in the same transaction as the entries, exactly as for a batch;
* if the database refuses that statement (a limit, an unknown account, an id reused with other
  content), it is rolled back to the savepoint and tried again without the entries the error points
  at; those are written after the group commits, each alone in its own transaction, so a refused
  entry fails alone with its own error and the others commit. The database applies every rule
  (limits, balance, append-only, chain) to every entry exactly as to entries posted on their own;
* if COMMIT itself fails, no entry of the group was stored: each is then written again alone, so
  each caller gets its own outcome.

Idempotency is per entry id, as for ``post_entries``: an id already stored is answered from the stored
entry (``created=False``) or refused with ALREADY_EXISTS; the same id twice in one group (a client's
retry racing its first try) is written once, the repeat getting the first one's outcome with
``created=False`` (or ALREADY_EXISTS when its content differs).

Entries are checked in Python before they are queued, so a malformed one fails at once without joining
a group. Each ``GroupCommit`` holds one connection at a time; one per process is the intended use.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from services.payouts.ledger.domain import (
    EntryDraft,
    EntrySpec,
    IdempotencyConflict,
    same_request,
    validate_entry,
)
from services.payouts.ledger.pg import driver, translate_error
from services.payouts.ledger.posting import append_drafts
from services.payouts.ledger.records import PostResult
from shared.errors import DomainError

MAX_GROUP = 256
"""Entries per transaction at most: enough to absorb any realistic burst, small enough that the
fallback's savepoints stay few and a group's locks are held briefly."""

Outcome = PostResult | BaseException


@dataclass(slots=True)
class _Request:
    draft: EntryDraft
    future: asyncio.Future[PostResult]


class GroupCommit:
    """Posts single entries, coalescing the concurrent ones into shared transactions.

    ``engine`` must act as the application role (as the service's engine does). Use one instance per
    process for all single entries that need no other write in their transaction.
    """

    def __init__(self, engine: AsyncEngine, *, max_group: int = MAX_GROUP) -> None:
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self._engine = engine
        self._max_group = max_group
        self._queue: list[_Request] = []
        self._writer: asyncio.Task[None] | None = None
        self.groups = 0
        """Transactions committed so far (for benchmarks and tests: entries / groups = mean group size)."""

    async def post(self, spec: EntrySpec) -> PostResult:
        """Write one entry, committed when this returns; raises its own error if it is refused."""
        draft = validate_entry(spec, now=datetime.now(UTC))
        future: asyncio.Future[PostResult] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(draft, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        return await future

    async def _write_queued(self) -> None:
        while self._queue:
            group, self._queue = self._queue[: self._max_group], self._queue[self._max_group :]
            try:
                outcomes = await self._commit([request.draft for request in group])
            except asyncio.CancelledError:  # shutting down: no caller may wait forever
                for request in group + self._queue:
                    request.future.cancel()
                self._queue = []
                raise
            except Exception as exc:  # a bug: every caller of the group hears of it
                outcomes = [exc] * len(group)
            for request, outcome in zip(group, outcomes, strict=True):
                if request.future.done():  # its caller was cancelled; the entry stands all the same
                    continue
                if isinstance(outcome, BaseException):
                    request.future.set_exception(outcome)
                else:
                    request.future.set_result(outcome)

    async def _commit(self, drafts: list[EntryDraft]) -> list[Outcome]:
        """Write one group and commit it; one outcome per draft, in order."""
        distinct, slot = _distinct(drafts)
        written: dict[uuid.UUID, Outcome] = {}
        alone = distinct
        if len(distinct) > 1:
            try:
                async with self._engine.begin() as conn:
                    together, alone = await _write_together(await driver(conn), distinct)
                written.update(together)
                self.groups += 1
            except Exception:  # nothing of the group is stored: each entry on its own
                written, alone = {}, distinct
        for draft in alone:
            written[draft.id] = await self._commit_alone(draft)
        outcomes: list[Outcome] = []
        for draft in drafts:
            original = distinct[slot[draft.id]]
            outcome = written[draft.id]
            if original is not draft:
                if isinstance(outcome, BaseException) and not same_request(
                    draft, original.content_hash, original.effective_at
                ):
                    outcome = await self._commit_alone(draft)  # nothing holds its id: it stands alone
                else:
                    outcome = _repeat_outcome(draft, original, outcome)
            outcomes.append(outcome)
        return outcomes

    async def _commit_alone(self, draft: EntryDraft) -> Outcome:
        try:
            async with self._engine.begin() as conn:
                result = (await append_drafts(await driver(conn), [draft]))[0]
        except Exception as exc:
            return _domain_error(exc)
        self.groups += 1
        return result


def _domain_error(exc: BaseException) -> BaseException:
    return exc if isinstance(exc, DomainError) else translate_error(exc)


def _distinct(drafts: Sequence[EntryDraft]) -> tuple[list[EntryDraft], dict[uuid.UUID, int]]:
    """The first draft of each id, and for each id the index of that draft in the first list."""
    slot: dict[uuid.UUID, int] = {}
    distinct: list[EntryDraft] = []
    for draft in drafts:
        if draft.id not in slot:
            slot[draft.id] = len(distinct)
            distinct.append(draft)
    return distinct, slot


def _repeat_outcome(repeat: EntryDraft, original: EntryDraft, outcome: Outcome) -> Outcome:
    """What a second request for an id gets when the first one in the same group had ``outcome``.

    As if it had come just after: an identical request gets the same entry back (not created by it), a
    different one is refused; a refused first request refuses its identical repeat the same way (a
    different request for the id of a refused one is written on its own by the caller).
    """
    stored_hash = original.content_hash
    stored_effective = original.effective_at
    if isinstance(outcome, PostResult):
        stored_hash, stored_effective = bytes.fromhex(outcome.content_hash), outcome.effective_at
    if not same_request(repeat, stored_hash, stored_effective):
        return IdempotencyConflict(
            f"entry id {repeat.id} was already used for an entry with different content; "
            "a retry must send exactly the same entry, and a new entry needs a new id",
            metadata={"entry_id": str(repeat.id)},
        )
    if isinstance(outcome, PostResult):
        return dataclasses.replace(outcome, created=False)
    return outcome


async def _write_together(
    connection: asyncpg.Connection, drafts: list[EntryDraft]
) -> tuple[dict[uuid.UUID, PostResult], list[EntryDraft]]:
    """Write distinct drafts as one statement in the open transaction, setting aside those refused.

    When the database refuses the statement, it is rolled back to a savepoint and tried again without
    the entries the error points at (``_suspects``). Returns the results of the written entries and the drafts set
    aside, which the caller writes one by one in transactions of their own.

    Why not a savepoint per entry: entries written one after another in one transaction lock their
    accounts' balance rows in the order of the entries, not of the accounts, so two such groups can
    deadlock. One statement locks all its rows in account order, and a rolled-back attempt releases
    its locks, so a group transaction never holds locks taken out of order.
    """
    remaining = drafts
    while remaining:
        await connection.execute("SAVEPOINT ledger_group")
        try:
            results = await append_drafts(connection, remaining)
        except (DomainError, asyncpg.PostgresError) as exc:
            await connection.execute("ROLLBACK TO SAVEPOINT ledger_group")
            suspects = _suspects(remaining, _domain_error(exc))
            remaining = [draft for draft in remaining if draft.id not in suspects]
            continue
        written = {result.entry_id: result for result in results}
        return written, [draft for draft in drafts if draft.id not in written]
    return {}, drafts


def _suspects(drafts: list[EntryDraft], error: BaseException) -> set[uuid.UUID]:
    """The entries to set aside after the database refused ``drafts`` written together.

    The entry the error names; for a limit, the entry moving the named account furthest towards its
    limit (one at a time: the others may well fit once it is gone); else all of them. Guessing wrong
    costs only time: an entry set aside is still written, alone, and gets its own outcome.
    """
    metadata = getattr(error, "metadata", None) or {}
    named = {draft.id for draft in drafts if str(draft.id) == metadata.get("entry_id")}
    if named:
        return named
    account = metadata.get("account")
    if account:
        sign = -1 if metadata.get("limit") == "non_negative" else 1
        moves = [(sum(sign * p.amount for p in draft.postings if p.account == account), draft.id) for draft in drafts]
        furthest, entry_id = max(moves, key=lambda move: move[0])
        if furthest > 0:
            return {entry_id}
    return {draft.id for draft in drafts}
