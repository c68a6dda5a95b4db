"""Writing through the Python API as the application role: accounts, entries, batches, idempotency, limits."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from services.payouts import ledger
from services.payouts.ledger import AccountSpec, AccountType, EntrySpec, PostingSpec, transfer
from shared.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _codes(prefix: str) -> dict[str, str]:
    return {name: f"{prefix}:{name}" for name in ("wallet", "equity", "alice", "bob")}


async def _chart(engine, prefix: str | None = None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A small chart of accounts under a fresh prefix: a funded wallet, equity, two participant payables."""
    codes = _codes(prefix or f"t{uuid.uuid4().hex[:8]}")
    async with engine.begin() as conn:
        await ledger.open_accounts(
            conn,
            [
                AccountSpec(codes["wallet"], AccountType.ASSET, non_negative=True),
                AccountSpec(codes["equity"], AccountType.EQUITY),
                AccountSpec(codes["alice"], AccountType.LIABILITY, non_positive=True, owner="participants/alice"),
                AccountSpec(codes["bob"], AccountType.LIABILITY, non_positive=True, owner="participants/bob"),
            ],
        )
        await ledger.post_entry(
            conn,
            transfer(uuid.uuid4(), "deposit", debit=codes["wallet"], credit=codes["equity"], amount=10_000),
        )
    return codes


async def _balance(engine, code: str) -> int:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        return (await ledger.get_balance(conn, code)).balance


async def test_open_accounts_is_idempotent_and_refuses_a_changed_spec(ledger_db):
    spec = AccountSpec("acct:open", AccountType.ASSET, non_negative=True, metadata={"purpose": "test"})
    async with ledger_db.app_engine.begin() as conn:
        first = await ledger.open_account(conn, spec)
        again = await ledger.open_account(conn, spec)
    assert first == again and first.balance == 0 and first.metadata == {"purpose": "test"}
    with pytest.raises(AlreadyExists, match="acct:open already exists with type"):
        async with ledger_db.app_engine.begin() as conn:
            await ledger.open_account(conn, AccountSpec("acct:open", AccountType.LIABILITY))
    with pytest.raises(InvalidArgument, match="pin the balance at zero"):
        async with ledger_db.app_engine.begin() as conn:
            await ledger.open_account(conn, AccountSpec("acct:both", AccountType.ASSET, True, True))


async def test_post_moves_balances_and_replay_returns_the_first_result(ledger_db):
    codes = await _chart(ledger_db.app_engine)
    entry = transfer(
        uuid.uuid4(),
        "allocation",
        debit=codes["equity"],
        credit=codes["alice"],
        amount=700,
        memo="round 1",
        metadata={"round": "1"},
    )
    async with ledger_db.app_engine.begin() as conn:
        first = await ledger.post_entry(conn, entry)
    async with ledger_db.app_engine.begin() as conn:
        replay = await ledger.post_entry(conn, entry)
    assert first.created and not replay.created
    assert (replay.entry_id, replay.recorded_at, replay.content_hash) == (
        first.entry_id,
        first.recorded_at,
        first.content_hash,
    )
    assert await _balance(ledger_db.app_engine, codes["alice"]) == -700
    assert await _balance(ledger_db.app_engine, codes["equity"]) == -10_000 + 700


async def test_replay_without_effective_time_matches_the_time_first_filled_in(ledger_db):
    codes = await _chart(ledger_db.app_engine)
    entry = transfer(uuid.uuid4(), "allocation", debit=codes["equity"], credit=codes["bob"], amount=5)
    async with ledger_db.app_engine.begin() as conn:
        first = await ledger.post_entry(conn, entry)
    async with ledger_db.app_engine.begin() as conn:
        replay = await ledger.post_entry(conn, entry)
    assert not replay.created and replay.effective_at == first.effective_at


async def test_same_id_with_other_content_is_already_exists(ledger_db):
    codes = await _chart(ledger_db.app_engine)
    entry_id = uuid.uuid4()
    async with ledger_db.app_engine.begin() as conn:
        await ledger.post_entry(
            conn, transfer(entry_id, "allocation", debit=codes["equity"], credit=codes["alice"], amount=10)
        )
    with pytest.raises(AlreadyExists, match=f"entry id {entry_id} was already used"):
        async with ledger_db.app_engine.begin() as conn:
            await ledger.post_entry(
                conn,
                transfer(entry_id, "allocation", debit=codes["equity"], credit=codes["alice"], amount=11),
            )
    assert await _balance(ledger_db.app_engine, codes["alice"]) == -10


async def test_duplicates_inside_one_batch(ledger_db):
    codes = await _chart(ledger_db.app_engine)
    same = transfer(uuid.uuid4(), "allocation", debit=codes["equity"], credit=codes["alice"], amount=3)
    other = transfer(uuid.uuid4(), "allocation", debit=codes["equity"], credit=codes["bob"], amount=4)
    async with ledger_db.app_engine.begin() as conn:
        results = await ledger.post_entries(conn, [same, other, same])
    assert results[0] == results[2] and results[0].created
    assert await _balance(ledger_db.app_engine, codes["alice"]) == -3  # once, not twice

    clash = transfer(same.id, "allocation", debit=codes["equity"], credit=codes["alice"], amount=99)
    fresh = transfer(uuid.uuid4(), "allocation", debit=codes["equity"], credit=codes["bob"], amount=1)
    fresh_clash = transfer(fresh.id, "allocation", debit=codes["equity"], credit=codes["bob"], amount=2)
    with pytest.raises(AlreadyExists, match="appears twice in this batch"):
        async with ledger_db.app_engine.begin() as conn:
            await ledger.post_entries(conn, [fresh, fresh_clash])
    with pytest.raises(AlreadyExists, match="already used"):
        async with ledger_db.app_engine.begin() as conn:
            await ledger.post_entries(conn, [fresh, clash])
    async with ledger_db.app_engine.connect() as conn:
        with pytest.raises(NotFound):
            await ledger.get_entry(conn, fresh.id)  # the batch left nothing behind


async def test_a_refused_entry_leaves_nothing_of_its_batch_even_if_the_caller_commits(ledger_db):
    codes = await _chart(ledger_db.app_engine)
    good = transfer(uuid.uuid4(), "allocation", debit=codes["equity"], credit=codes["alice"], amount=1)
    unknown = transfer(uuid.uuid4(), "allocation", debit=codes["equity"], credit="nobody:here", amount=1)
    async with ledger_db.app_engine.connect() as conn:
        await conn.begin()
        with pytest.raises(NotFound, match="account nobody:here does not exist"):
            await ledger.post_entries(conn, [good, unknown])
        await conn.commit()  # PostgreSQL answers COMMIT of a failed transaction with ROLLBACK
    async with ledger_db.app_engine.connect() as conn:
        with pytest.raises(NotFound):
            await ledger.get_entry(conn, good.id)


async def test_limit_is_refused_naming_the_account_and_shortfall(ledger_db):
    codes = await _chart(ledger_db.app_engine)
    with pytest.raises(FailedPrecondition, match=f"account {codes['wallet']} may not go below zero") as info:
        async with ledger_db.app_engine.begin() as conn:
            await ledger.post_entry(
                conn,
                transfer(uuid.uuid4(), "payout", debit=codes["equity"], credit=codes["wallet"], amount=10_500),
            )
    assert info.value.metadata == {"account": codes["wallet"], "limit": "non_negative", "shortfall": "500"}
    assert isinstance(info.value, ledger.LimitExceeded)
    assert await _balance(ledger_db.app_engine, codes["wallet"]) == 10_000


async def test_validation_names_the_posting(ledger_db):
    codes = await _chart(ledger_db.app_engine)
    bad = [
        (
            EntrySpec(uuid.uuid4(), "x", [PostingSpec(codes["wallet"], 1.0), PostingSpec(codes["equity"], -1)]),  # type: ignore[arg-type]
            r"postings\[0\]\.amount must be an integer",
        ),
        (
            EntrySpec(uuid.uuid4(), "x", [PostingSpec(codes["wallet"], True), PostingSpec(codes["equity"], -1)]),  # type: ignore[arg-type]
            r"postings\[0\]\.amount must be an integer",
        ),
        (
            EntrySpec(uuid.uuid4(), "x", [PostingSpec(codes["wallet"], 2), PostingSpec(codes["equity"], -1)]),
            "does not balance: debits 2 sat, credits 1 sat",
        ),
        (
            EntrySpec(uuid.uuid4(), "x", [PostingSpec(codes["wallet"], 0), PostingSpec(codes["equity"], 0)]),
            r"postings\[0\]\.amount must be more than 0",
        ),
        (
            EntrySpec(uuid.uuid4(), "reversal", [PostingSpec(codes["wallet"], 1), PostingSpec(codes["equity"], -1)]),
            "kind 'reversal' is reserved",
        ),
    ]
    for spec, message in bad:
        with pytest.raises(InvalidArgument, match=message):
            async with ledger_db.app_engine.begin() as conn:
                await ledger.post_entry(conn, spec)


async def test_reversal_undoes_once_and_references_the_original(ledger_db):
    codes = await _chart(ledger_db.app_engine)
    original = transfer(uuid.uuid4(), "allocation", debit=codes["equity"], credit=codes["alice"], amount=250)
    reversal_id = uuid.uuid4()
    async with ledger_db.app_engine.begin() as conn:
        await ledger.post_entry(conn, original)
        await ledger.reverse_entry(conn, reversal_id, original.id, memo="wrong round")
    async with ledger_db.app_engine.begin() as conn:
        again = await ledger.reverse_entry(conn, reversal_id, original.id, memo="wrong round")
        entry = await ledger.get_entry(conn, reversal_id)
    assert not again.created
    assert entry.kind == "reversal" and entry.reverses_entry_id == original.id
    assert [(p.account_code, p.amount) for p in entry.postings] == [
        (codes["equity"], -250),
        (codes["alice"], 250),
    ]
    assert await _balance(ledger_db.app_engine, codes["alice"]) == 0
    with pytest.raises(FailedPrecondition, match="already reversed"):
        async with ledger_db.app_engine.begin() as conn:
            await ledger.reverse_entry(conn, uuid.uuid4(), original.id)


async def test_effective_and_recorded_times(ledger_db):
    codes = await _chart(ledger_db.app_engine)
    backdated = datetime.now(UTC) - timedelta(days=30)
    async with ledger_db.app_engine.begin() as conn:
        result = await ledger.post_entry(
            conn,
            transfer(
                uuid.uuid4(),
                "allocation",
                debit=codes["equity"],
                credit=codes["alice"],
                amount=9,
                effective_at=backdated,
            ),
        )
    assert result.effective_at == backdated
    assert result.recorded_at > backdated + timedelta(days=29)


async def test_concurrent_writers_of_one_entry_id_get_one_entry(ledger_db):
    """The second writer waits for the first to commit, then gets its result instead of a duplicate."""
    codes = await _chart(ledger_db.app_engine)
    entry = transfer(uuid.uuid4(), "allocation", debit=codes["equity"], credit=codes["bob"], amount=8)
    first_conn = await ledger_db.app_engine.connect()
    try:
        await first_conn.begin()
        first = await ledger.post_entry(first_conn, entry)

        async def second() -> ledger.records.PostResult:
            async with ledger_db.app_engine.begin() as conn:
                return await ledger.post_entry(conn, entry)

        waiting = asyncio.ensure_future(second())
        async with ledger_db.owner_engine.connect() as observer:
            while not await observer.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = "
                    "current_database()"
                )
            ):  # until the second writer is blocked on the first one's uncommitted row
                assert not waiting.done()
                await asyncio.sleep(0.01)
        await first_conn.commit()
        result = await waiting
    finally:
        await first_conn.close()
    assert first.created and not result.created and result.recorded_at == first.recorded_at
    assert await _balance(ledger_db.app_engine, codes["bob"]) == -8
