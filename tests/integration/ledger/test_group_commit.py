"""Group commit: concurrent single entries share a transaction, yet each succeeds or fails on its own.

Callers started together in one event loop all queue before the writer task first runs (asyncio runs
ready tasks in order), so each test's requests form one group by construction, not by timing; the
tests check that they did (one transaction, one recorded time) before checking the outcomes.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest

from services.payouts import ledger
from services.payouts.ledger import AccountSpec, AccountType, EntrySpec, GroupCommit, PostingSpec, transfer
from services.payouts.ledger.records import PostResult
from shared.errors import AlreadyExists, InvalidArgument, NotFound

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _chart(engine, funds: int = 1_000) -> dict[str, str]:  # type: ignore[no-untyped-def]
    prefix = f"g{uuid.uuid4().hex[:8]}"
    codes = {name: f"{prefix}:{name}" for name in ("wallet", "equity", "alice", "bob")}
    async with engine.begin() as conn:
        await ledger.open_accounts(
            conn,
            [
                AccountSpec(codes["wallet"], AccountType.ASSET, non_negative=True),
                AccountSpec(codes["equity"], AccountType.EQUITY),
                AccountSpec(codes["alice"], AccountType.ASSET, non_negative=True),
                AccountSpec(codes["bob"], AccountType.ASSET, non_negative=True),
            ],
        )
        await ledger.post_entry(
            conn, transfer(uuid.uuid4(), "deposit", debit=codes["wallet"], credit=codes["equity"], amount=funds)
        )
    return codes


async def _balances(engine, codes: dict[str, str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return {name: (await ledger.get_balance(conn, code)).balance for name, code in codes.items()}


async def _chain_ok(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        report = await ledger.verify_chain(conn)
        assert report.ok, report
        assert await ledger.check_balances(conn) == []


async def _post_together(group: GroupCommit, specs: list[EntrySpec]) -> list[Any]:
    """Post every spec at once; each result or the error its own caller got."""
    return await asyncio.gather(*(group.post(spec) for spec in specs), return_exceptions=True)


async def test_concurrent_entries_share_one_transaction_and_one_chain_append(ledger_db):
    codes = await _chart(ledger_db.app_engine)
    group = GroupCommit(ledger_db.app_engine)
    specs = [
        transfer(ledger.new_entry_id(), "move", debit=codes["alice"], credit=codes["wallet"], amount=i + 1)
        for i in range(20)
    ]
    results = await _post_together(group, specs)

    assert group.groups == 1
    assert all(isinstance(r, PostResult) and r.created for r in results)
    assert len({r.recorded_at for r in results}) == 1  # one transaction
    assert [r.entry_id for r in results] == [s.id for s in specs]
    assert (await _balances(ledger_db.app_engine, codes))["alice"] == sum(range(1, 21))
    async with ledger_db.app_engine.connect() as conn:
        sequences = [(await ledger.get_entry(conn, s.id)).sequence for s in specs]
    assert sequences == sorted(sequences) and sequences[-1] - sequences[0] == len(specs) - 1
    await _chain_ok(ledger_db.app_engine)


async def test_one_bad_transfer_in_a_group_fails_alone_with_its_own_error(ledger_db):
    codes = await _chart(ledger_db.app_engine, funds=1_000)
    stored = transfer(ledger.new_entry_id(), "move", debit=codes["alice"], credit=codes["wallet"], amount=5)
    group = GroupCommit(ledger_db.app_engine)
    await group.post(stored)
    groups_before = group.groups

    good = [
        transfer(ledger.new_entry_id(), "move", debit=codes["alice"], credit=codes["wallet"], amount=10)
        for _ in range(3)
    ]
    overdraft = transfer(  # the wallet holds 1,000 - 5 - 30 when it comes: short
        ledger.new_entry_id(), "move", debit=codes["bob"], credit=codes["wallet"], amount=5_000
    )
    unknown = transfer(ledger.new_entry_id(), "move", debit=codes["alice"], credit="nobody:here", amount=1)
    reused = transfer(stored.id, "move", debit=codes["alice"], credit=codes["wallet"], amount=6)
    batch = [good[0], overdraft, good[1], unknown, reused, good[2]]
    results = await _post_together(group, batch)

    assert group.groups == groups_before + 1  # the good ones committed together, in one transaction
    assert isinstance(results[1], ledger.LimitExceeded) and codes["wallet"] in str(results[1])
    assert isinstance(results[3], NotFound) and "nobody:here" in str(results[3])
    assert isinstance(results[4], AlreadyExists) and str(stored.id) in str(results[4])
    committed = [results[0], results[2], results[5]]
    assert all(r.created for r in committed) and len({r.recorded_at for r in committed}) == 1

    balances = await _balances(ledger_db.app_engine, codes)
    assert balances == {"wallet": 1_000 - 35, "equity": -1_000, "alice": 35, "bob": 0}
    async with ledger_db.app_engine.connect() as conn:
        for refused in (overdraft, unknown):
            with pytest.raises(NotFound):
                await ledger.get_entry(conn, refused.id)
        assert [p.amount for p in (await ledger.get_entry(conn, stored.id)).postings] == [5, -5]
    await _chain_ok(ledger_db.app_engine)


async def test_idempotent_retry_inside_a_group(ledger_db):
    codes = await _chart(ledger_db.app_engine)
    group = GroupCommit(ledger_db.app_engine)
    earlier = transfer(ledger.new_entry_id(), "move", debit=codes["alice"], credit=codes["wallet"], amount=1)
    first_earlier = await group.post(earlier)

    entry = transfer(ledger.new_entry_id(), "move", debit=codes["alice"], credit=codes["wallet"], amount=7)
    other = transfer(ledger.new_entry_id(), "move", debit=codes["bob"], credit=codes["wallet"], amount=2)
    clash = transfer(entry.id, "move", debit=codes["alice"], credit=codes["wallet"], amount=8)
    # entry and its retry race in one group (no effective time given: each call fills in its own
    # clock, and the retry must still match); the earlier entry is retried in it too.
    results = await _post_together(group, [entry, other, entry, earlier, clash])

    first, _, retry, again, refused = results
    assert group.groups == 2
    assert first.created and not retry.created
    assert (retry.entry_id, retry.recorded_at, retry.content_hash, retry.effective_at) == (
        first.entry_id,
        first.recorded_at,
        first.content_hash,
        first.effective_at,
    )
    assert not again.created and again.recorded_at == first_earlier.recorded_at
    assert isinstance(refused, AlreadyExists) and str(entry.id) in str(refused)
    assert (await _balances(ledger_db.app_engine, codes))["alice"] == 1 + 7  # each entry once
    await _chain_ok(ledger_db.app_engine)


async def test_an_id_whose_first_request_was_refused_is_free_for_another_in_the_same_group(ledger_db):
    codes = await _chart(ledger_db.app_engine, funds=100)
    group = GroupCommit(ledger_db.app_engine)
    entry_id = ledger.new_entry_id()
    too_big = transfer(entry_id, "move", debit=codes["alice"], credit=codes["wallet"], amount=500)
    fits = transfer(entry_id, "move", debit=codes["alice"], credit=codes["wallet"], amount=50)
    refused, written, again = await _post_together(group, [too_big, fits, fits])
    assert isinstance(refused, ledger.LimitExceeded)
    assert written.created and not again.created and again.recorded_at == written.recorded_at
    assert (await _balances(ledger_db.app_engine, codes))["alice"] == 50
    await _chain_ok(ledger_db.app_engine)


async def test_a_malformed_entry_is_refused_before_it_joins_a_group(ledger_db):
    group = GroupCommit(ledger_db.app_engine)
    unbalanced = EntrySpec(ledger.new_entry_id(), "move", (PostingSpec("a:b", 5), PostingSpec("a:c", -4)))
    with pytest.raises(InvalidArgument, match="does not balance"):
        await group.post(unbalanced)
    assert group.groups == 0


async def test_two_committers_on_hot_accounts_lose_nothing_and_break_no_limit(ledger_db):
    """Two processes' worth of committers, random transfers among three non-negative accounts, many
    refused on the limits: every success is stored once, balances add up, the chain verifies."""
    hot = [f"gh{uuid.uuid4().hex[:6]}:{name}" for name in "abc"]
    equity = hot[0] + ":equity"
    async with ledger_db.app_engine.begin() as conn:
        await ledger.open_accounts(
            conn,
            [AccountSpec(code, AccountType.ASSET, non_negative=True) for code in hot]
            + [AccountSpec(equity, AccountType.EQUITY)],
        )
        await ledger.post_entry(conn, transfer(uuid.uuid4(), "deposit", debit=hot[0], credit=equity, amount=900))
    committers = [GroupCommit(ledger_db.app_engine), GroupCommit(ledger_db.app_engine)]
    rng = random.Random(20)
    specs = []
    for _ in range(240):
        debit, credit = rng.sample(hot, 2)
        specs.append(transfer(uuid.uuid4(), "move", debit=debit, credit=credit, amount=rng.randint(1, 400)))

    async def client(k: int) -> list[object]:
        outcomes = []
        for spec in specs[k::8]:
            try:
                outcomes.append(await committers[k % 2].post(spec))
            except ledger.LimitExceeded as error:
                outcomes.append(error)
        return outcomes

    per_client = await asyncio.gather(*(client(k) for k in range(8)))
    posted = [
        spec
        for k in range(8)
        for spec, out in zip(specs[k::8], per_client[k], strict=True)
        if not isinstance(out, Exception)
    ]
    assert posted and len(posted) < len(specs), "the workload should both succeed and hit the limits"

    expected = dict.fromkeys(hot, 0)
    expected[hot[0]] = 900
    for spec in posted:
        for posting in spec.postings:
            expected[posting.account] += posting.amount
    async with ledger_db.app_engine.connect() as conn:
        assert {code: (await ledger.get_balance(conn, code)).balance for code in hot} == expected
        for spec in specs:
            if spec in posted:
                assert [p.amount for p in (await ledger.get_entry(conn, spec.id)).postings] == [
                    p.amount for p in spec.postings
                ]
            else:
                with pytest.raises(NotFound):
                    await ledger.get_entry(conn, spec.id)
    await _chain_ok(ledger_db.app_engine)
