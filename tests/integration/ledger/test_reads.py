"""Reading the ledger: as-of balances on both clocks, trial balance, statements, listings and export."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.payouts import ledger
from services.payouts.ledger import AccountSpec, AccountType, EntryFilter, TimeBasis, transfer
from shared.errors import InvalidArgument, NotFound

pytestmark = pytest.mark.asyncio(loop_scope="module")

DAY = timedelta(days=1)


async def _open(engine, prefix: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    codes = {
        "cash": f"{prefix}:cash",
        "equity": f"{prefix}:equity",
        "alice": f"{prefix}:alice",
        "alice_stake": f"{prefix}:alice:stake",
    }
    async with engine.begin() as conn:
        await ledger.open_accounts(
            conn,
            [
                AccountSpec(codes["cash"], AccountType.ASSET),
                AccountSpec(codes["equity"], AccountType.EQUITY),
                AccountSpec(codes["alice"], AccountType.LIABILITY, owner=f"participants/{prefix}"),
                AccountSpec(codes["alice_stake"], AccountType.LIABILITY, owner=f"participants/{prefix}"),
            ],
        )
    return codes


async def test_as_of_effective_versus_recorded(ledger_db):
    codes = await _open(ledger_db.app_engine, "asof")
    start = datetime.now(UTC) - 10 * DAY
    async with ledger_db.app_engine.begin() as conn:
        first = await ledger.post_entry(
            conn,
            transfer(
                uuid.uuid4(),
                "deposit",
                debit=codes["cash"],
                credit=codes["equity"],
                amount=100,
                effective_at=start,
            ),
        )
    async with ledger_db.app_engine.begin() as conn:
        backdated = await ledger.post_entry(
            conn,
            transfer(
                uuid.uuid4(),
                "deposit",
                debit=codes["cash"],
                credit=codes["equity"],
                amount=40,
                effective_at=start + DAY,
            ),
        )
    between = first.recorded_at + (backdated.recorded_at - first.recorded_at) / 2
    async with ledger_db.app_engine.connect() as conn:

        async def balance(when: datetime, basis: TimeBasis) -> int:
            return (await ledger.get_balance(conn, codes["cash"], as_of=when, basis=basis)).balance

        assert await balance(start - DAY, TimeBasis.EFFECTIVE) == 0  # before anything: zero, not an error
        assert await balance(start, TimeBasis.EFFECTIVE) == 100  # inclusive
        assert await balance(start + 2 * DAY, TimeBasis.EFFECTIVE) == 140
        assert await balance(start + 2 * DAY, TimeBasis.RECORDED) == 0  # nothing was written yet then
        assert await balance(between, TimeBasis.RECORDED) == 100  # the backdated entry was written later
        assert await balance(backdated.recorded_at, TimeBasis.RECORDED) == 140
        current = await ledger.get_balance(conn, codes["cash"])
        assert (current.balance, current.posting_count) == (140, 2)
        empty = await ledger.get_balance(conn, codes["alice"], as_of=start)
        assert (empty.balance, empty.posting_count) == (0, 0)
        with pytest.raises(NotFound):
            await ledger.get_balance(conn, "asof:missing")
        with pytest.raises(InvalidArgument, match="time zone"):
            await ledger.get_balance(conn, codes["cash"], as_of=datetime(2024, 1, 1))


async def test_trial_balance_and_statement(ledger_db):
    codes = await _open(ledger_db.app_engine, "stmt")
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    async with ledger_db.app_engine.begin() as conn:
        await ledger.post_entries(
            conn,
            [
                transfer(
                    uuid.uuid4(),
                    "deposit",
                    debit=codes["cash"],
                    credit=codes["equity"],
                    amount=1000,
                    effective_at=t0,
                ),
                transfer(
                    uuid.uuid4(),
                    "allocation",
                    debit=codes["equity"],
                    credit=codes["alice"],
                    amount=300,
                    effective_at=t0 + DAY,
                    memo="round 1",
                ),
                transfer(
                    uuid.uuid4(),
                    "stake",
                    debit=codes["alice"],
                    credit=codes["alice_stake"],
                    amount=100,
                    effective_at=t0 + 2 * DAY,
                ),
                transfer(
                    uuid.uuid4(),
                    "allocation",
                    debit=codes["equity"],
                    credit=codes["alice"],
                    amount=50,
                    effective_at=t0 + 3 * DAY,
                    memo="round 2",
                ),
            ],
        )
    async with ledger_db.app_engine.connect() as conn:
        trial = await ledger.trial_balance(conn, as_of=t0 + 2 * DAY)
        now_trial = await ledger.trial_balance(conn)
        report = await ledger.statement(conn, "participants/stmt", start=t0 + 2 * DAY, end=t0 + 4 * DAY)
    for tb in (trial, now_trial):
        assert tb.balanced and sum(line.balance for line in tb.lines) == 0
    lines = {line.account_code: line for line in trial.lines}
    assert (lines[codes["alice"]].debit, lines[codes["alice"]].credit, lines[codes["alice"]].balance) == (
        100,
        300,
        -200,
    )
    assert lines[codes["cash"]].balance == 1000
    by_code = {a.account_code: a for a in report.accounts}
    alice = by_code[codes["alice"]]
    assert alice.opening_balance == -300 and alice.closing_balance == -250
    assert [(line.kind, line.amount, line.running_balance) for line in alice.lines] == [
        ("stake", 100, -200),
        ("allocation", -50, -250),
    ]
    stake = by_code[codes["alice_stake"]]
    assert (stake.opening_balance, stake.closing_balance, len(stake.lines)) == (0, -100, 1)


async def _all_pages(conn, flt: EntryFilter | None, size: int) -> list[ledger.records.Entry]:  # type: ignore[no-untyped-def]
    seen, token = [], ""
    while True:
        page = await ledger.list_entries(conn, flt, page_size=size, page_token=token)
        seen.extend(page.items)
        token = page.next_page_token
        if not token:
            return seen


async def test_pagination_neither_skips_nor_repeats(ledger_db):
    codes = await _open(ledger_db.app_engine, "page")
    t0 = datetime(2024, 6, 1, tzinfo=UTC)
    posted = []
    for batch in range(5):
        async with ledger_db.app_engine.begin() as conn:
            specs = [
                transfer(
                    uuid.uuid4(),
                    "deposit" if i % 3 else "fee",
                    debit=codes["cash"],
                    credit=codes["equity"] if i % 2 else codes["alice"],
                    amount=1 + i,
                    effective_at=t0 + (batch * 7 + i) * DAY,
                )
                for i in range(7)
            ]
            await ledger.post_entries(conn, specs)
            posted.extend(specs)
    async with ledger_db.app_engine.connect() as conn:
        everything = await _all_pages(conn, None, 4)
        ids = [e.entry_id for e in everything]
        assert len(ids) == len(set(ids)) and {s.id for s in posted} <= set(ids)
        assert [e.sequence for e in everything] == sorted(e.sequence for e in everything)

        checks = [
            (EntryFilter(account_code=codes["alice"]), lambda s: s.postings[1].account == codes["alice"]),
            (EntryFilter(kind="fee"), lambda s: s.kind == "fee"),
            (
                EntryFilter(account_code=codes["cash"], kind="fee", start=t0 + 5 * DAY, end=t0 + 20 * DAY),
                lambda s: s.kind == "fee" and t0 + 5 * DAY <= s.effective_at < t0 + 20 * DAY,
            ),
        ]
        for flt, wanted in checks:
            for size in (1, 3, 50):
                got = [e.entry_id for e in await _all_pages(conn, flt, size)]
                assert got == [s.id for s in posted if wanted(s)]  # chain order is posting order here

        first = await ledger.list_entries(conn, EntryFilter(kind="fee"), page_size=2)
        with pytest.raises(InvalidArgument, match="other filters"):
            await ledger.list_entries(conn, EntryFilter(kind="deposit"), page_size=2, page_token=first.next_page_token)


async def test_pagination_is_stable_while_entries_are_added(ledger_db):
    codes = await _open(ledger_db.app_engine, "live")
    async with ledger_db.app_engine.begin() as conn:
        await ledger.post_entries(
            conn,
            [
                transfer(uuid.uuid4(), "deposit", debit=codes["cash"], credit=codes["equity"], amount=1)
                for _ in range(6)
            ],
        )
    seen: list[uuid.UUID] = []
    flt = EntryFilter(account_code=codes["cash"])
    token = ""
    async with ledger_db.app_engine.connect() as reader:
        while True:
            page = await ledger.list_entries(reader, flt, page_size=2, page_token=token)
            seen.extend(e.entry_id for e in page.items)
            async with ledger_db.app_engine.begin() as writer:  # a new entry lands between pages
                await ledger.post_entry(
                    writer,
                    transfer(uuid.uuid4(), "deposit", debit=codes["cash"], credit=codes["equity"], amount=1),
                )
            token = page.next_page_token
            if not token or len(seen) > 30:
                break
    assert len(seen) == len(set(seen)) and len(seen) > 6


async def test_export_csv_has_one_line_per_posting(ledger_db):
    codes = await _open(ledger_db.app_engine, "csv")
    async with ledger_db.app_engine.begin() as conn:
        await ledger.post_entries(
            conn,
            [
                transfer(
                    uuid.uuid4(),
                    "deposit",
                    debit=codes["cash"],
                    credit=codes["equity"],
                    amount=7,
                    memo='with "quotes", comma',
                )
                for _ in range(30)
            ],
        )
    chunks = []
    async with ledger_db.app_engine.begin() as conn:
        async for chunk in ledger.export_entries_csv(conn, EntryFilter(account_code=codes["cash"]), chunk_lines=16):
            chunks.append(chunk)
    assert len(chunks) > 1 and all(chunk.endswith("\n") for chunk in chunks)
    rows = list(csv.DictReader(io.StringIO("".join(chunks))))
    assert len(rows) == 60
    assert {r["account_code"] for r in rows} == {codes["cash"], codes["equity"]}
    assert all(r["memo"] == 'with "quotes", comma' for r in rows)
    assert sum(int(r["amount_satoshis"]) for r in rows) == 0


async def test_list_accounts_pages_by_code(ledger_db):
    await _open(ledger_db.app_engine, "acl")
    async with ledger_db.app_engine.connect() as conn:
        seen, token = [], ""
        while True:
            page = await ledger.list_accounts(conn, code_prefix="acl:", page_size=3, page_token=token)
            seen.extend(a.code for a in page.items)
            token = page.next_page_token
            if not token:
                break
        owned = await ledger.list_accounts(conn, owner="participants/acl")
        liabilities = await ledger.list_accounts(conn, account_type=AccountType.LIABILITY, code_prefix="acl:")
    assert seen == sorted(seen) and len(seen) == 4
    assert [a.code for a in owned.items] == ["acl:alice", "acl:alice:stake"]
    assert [a.code for a in liabilities.items] == ["acl:alice", "acl:alice:stake"]
