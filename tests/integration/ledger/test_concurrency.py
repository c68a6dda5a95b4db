"""Many writers on separate connections hammering three hot accounts at once.

Money only moves between the three non-negative accounts, so their total is fixed; random amounts
make many transfers fail on the limits. Afterwards nothing may be lost or doubled (every reported
success is in the ledger exactly once, balances equal the successes' sums), no balance may be below
zero, and the chain must verify.
"""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from services.payouts import ledger
from services.payouts.ledger import AccountSpec, AccountType, EntryFilter, EntrySpec, transfer

pytestmark = pytest.mark.asyncio(loop_scope="module")

WRITERS = 16
CALLS_PER_WRITER = 20
FUNDS = 3_000
HOT = ["hot:a", "hot:b", "hot:c"]


async def _writer(engine, seed: int) -> tuple[list[EntrySpec], int]:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    posted: list[EntrySpec] = []
    refused = 0
    for _ in range(CALLS_PER_WRITER):
        batch = []
        for _ in range(rng.choice([1, 1, 2, 3])):  # batches touch the accounts in varying orders
            debit, credit = rng.sample(HOT, 2)
            batch.append(transfer(uuid.uuid4(), "move", debit=debit, credit=credit, amount=rng.randint(1, 900)))
        try:
            async with engine.begin() as conn:
                await ledger.post_entries(conn, batch)
            posted.extend(batch)
        except ledger.LimitExceeded:
            refused += 1
    return posted, refused


async def test_concurrent_writers_lose_nothing_and_break_no_limit(ledger_db):
    async with ledger_db.app_engine.begin() as conn:
        await ledger.open_accounts(
            conn,
            [AccountSpec(code, AccountType.ASSET, non_negative=True) for code in HOT]
            + [AccountSpec("hot:equity", AccountType.EQUITY)],
        )
        await ledger.post_entry(
            conn, transfer(uuid.uuid4(), "deposit", debit=HOT[0], credit="hot:equity", amount=FUNDS)
        )

    results = await asyncio.gather(*(_writer(ledger_db.app_engine, seed) for seed in range(WRITERS)))
    posted = [spec for specs, _ in results for spec in specs]
    refused = sum(count for _, count in results)
    assert posted and refused, "the workload should both succeed and hit the limits"

    expected = dict.fromkeys(HOT, 0)
    expected[HOT[0]] = FUNDS
    for spec in posted:
        for posting in spec.postings:
            expected[posting.account] += posting.amount
    async with ledger_db.app_engine.begin() as conn:
        balances = {code: (await ledger.get_balance(conn, code)).balance for code in HOT}
        stored_ids = set()
        for code in HOT:
            token = ""
            while True:
                page = await ledger.list_entries(conn, EntryFilter(account_code=code), page_size=500, page_token=token)
                stored_ids |= {e.entry_id for e in page.items if e.kind == "move"}
                token = page.next_page_token
                if not token:
                    break
        report = await ledger.verify_chain(conn)
        mismatches = await ledger.check_balances(conn)
    assert stored_ids == {spec.id for spec in posted}
    assert balances == expected and sum(balances.values()) == FUNDS
    assert all(balance >= 0 for balance in balances.values())
    assert mismatches == []
    assert report.ok, report
