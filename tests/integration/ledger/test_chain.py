"""The hash chain: verification, the head, and tampering by a superuser who switched the triggers off.

Each tamper test edits history behind the triggers' back, checks that ``verify_chain`` names exactly
the edited entry, then puts the row back (and sees the chain verify again), so the tests share data.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import text

from services.payouts import ledger
from services.payouts.ledger import AccountSpec, AccountType, transfer
from services.payouts.ledger.pg import translate_error
from services.payouts.ledger.records import Entry
from shared.errors import Aborted

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def entries(ledger_db) -> AsyncIterator[list[Entry]]:  # type: ignore[no-untyped-def]
    async with ledger_db.app_engine.begin() as conn:
        await ledger.open_accounts(
            conn,
            [
                AccountSpec("chain:cash", AccountType.ASSET, non_negative=True),
                AccountSpec("chain:equity", AccountType.EQUITY),
                AccountSpec("chain:payable", AccountType.LIABILITY),
            ],
        )
    ids = []
    for i in range(12):  # one transaction each, so the chain interleaves commits
        async with ledger_db.app_engine.begin() as conn:
            result = await ledger.post_entry(
                conn,
                transfer(
                    uuid.uuid4(),
                    "deposit",
                    debit="chain:cash",
                    credit="chain:equity",
                    amount=100 + i,
                    memo=f"entry {i}",
                    metadata={"i": str(i)},
                ),
            )
            ids.append(result.entry_id)
    async with ledger_db.app_engine.connect() as conn:
        yield [await ledger.get_entry(conn, entry_id) for entry_id in ids]


async def _verify(ledger_db, **kwargs) -> ledger.records.ChainReport:  # type: ignore[no-untyped-def]
    async with ledger_db.app_engine.begin() as conn:
        return await ledger.verify_chain(conn, **kwargs)


async def _as_superuser(ledger_db, statements: list[str], params: dict | None = None) -> None:  # type: ignore[no-untyped-def]
    async with ledger_db.owner_engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            await conn.execute(text(statement), params or {})


async def test_chain_verifies_and_links_entries(ledger_db, entries):
    report = await _verify(ledger_db)
    assert report.ok and report.entries_checked == len(entries)
    sequences = [e.sequence for e in entries]
    assert sequences == list(range(1, len(entries) + 1))
    assert entries[0].previous_hash == ""
    assert all(later.previous_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    async with ledger_db.app_engine.connect() as conn:
        head = await ledger.chain_head(conn)
    assert (head.sequence, head.entry_id, head.hash) == (12, entries[-1].entry_id, entries[-1].hash)
    assert (await _verify(ledger_db, expected_head=head)).ok


async def test_edited_amount_is_found_at_its_entry(ledger_db, entries):
    target = entries[4]
    await _as_superuser(
        ledger_db,
        ["UPDATE payouts.ledger_postings SET amount = amount + 1 WHERE entry_id = :id AND idx = 0"],
        {"id": target.entry_id},
    )
    report = await _verify(ledger_db)
    await _as_superuser(
        ledger_db,
        ["UPDATE payouts.ledger_postings SET amount = amount - 1 WHERE entry_id = :id AND idx = 0"],
        {"id": target.entry_id},
    )
    assert not report.ok
    assert (report.first_bad_entry_id, report.first_bad_sequence) == (target.entry_id, target.sequence)
    assert report.entries_checked == target.sequence - 1
    assert report.actual_hash == target.hash and report.expected_hash != target.hash
    assert "content hash" in report.reason
    assert (await _verify(ledger_db)).ok


async def test_edit_with_all_triggers_disabled_is_found(ledger_db, entries):
    target = entries[7]
    async with ledger_db.owner_engine.begin() as conn:
        await conn.execute(text("ALTER TABLE payouts.ledger_entries DISABLE TRIGGER ALL"))
        await conn.execute(
            text("UPDATE payouts.ledger_entries SET memo = 'rewritten' WHERE id = :id"),
            {"id": target.entry_id},
        )
        await conn.execute(text("ALTER TABLE payouts.ledger_entries ENABLE TRIGGER ALL"))
    report = await _verify(ledger_db)
    async with ledger_db.owner_engine.begin() as conn:
        await conn.execute(text("ALTER TABLE payouts.ledger_entries DISABLE TRIGGER ALL"))
        await conn.execute(
            text("UPDATE payouts.ledger_entries SET memo = :m WHERE id = :id"),
            {"id": target.entry_id, "m": target.memo},
        )
        await conn.execute(text("ALTER TABLE payouts.ledger_entries ENABLE TRIGGER ALL"))
    assert (report.first_bad_entry_id, report.first_bad_sequence) == (target.entry_id, target.sequence)
    assert (await _verify(ledger_db)).ok


async def test_two_edits_name_the_earlier(ledger_db, entries):
    early, late = entries[2], entries[9]
    await _as_superuser(
        ledger_db,
        [
            "UPDATE payouts.ledger_entries SET effective_at = effective_at + interval '1 s' WHERE id = :late",
            "UPDATE payouts.ledger_chain SET hash = sha256(hash) WHERE entry_id = :early",
        ],
        {"early": early.entry_id, "late": late.entry_id},
    )
    report = await _verify(ledger_db)
    assert (report.first_bad_entry_id, report.first_bad_sequence) == (early.entry_id, early.sequence)
    assert report.reason == "the stored chain hash does not match"
    await _as_superuser(
        ledger_db,
        [
            "UPDATE payouts.ledger_entries SET effective_at = effective_at - interval '1 s' WHERE id = :late",
            "UPDATE payouts.ledger_chain SET hash = decode(:h, 'hex') WHERE entry_id = :early",
        ],
        {"early": early.entry_id, "late": late.entry_id, "h": early.hash},
    )
    assert (await _verify(ledger_db)).ok


async def test_deleted_entry_and_entry_outside_the_chain_are_found(ledger_db, entries):
    target = entries[5]
    await _as_superuser(ledger_db, ["DELETE FROM payouts.ledger_chain WHERE entry_id = :id"], {"id": target.entry_id})
    report = await _verify(ledger_db)
    assert report.first_bad_sequence == target.sequence and "jumps" in report.reason
    await _as_superuser(
        ledger_db,
        ["INSERT INTO payouts.ledger_chain (seq, entry_id, hash) VALUES (:seq, :id, decode(:h, 'hex'))"],
        {"seq": target.sequence, "id": target.entry_id, "h": target.hash},
    )
    assert (await _verify(ledger_db)).ok

    forged = uuid.uuid4()
    await _as_superuser(
        ledger_db,
        [
            "INSERT INTO payouts.ledger_entries (id, effective_at, kind, content_hash) "
            "VALUES (:id, now(), 'x', "
            "sha256('x'))",
        ],
        {"id": forged},
    )
    report = await _verify(ledger_db)
    assert report.first_bad_entry_id == forged and report.reason == "the entry is not in the hash chain"
    await _as_superuser(ledger_db, ["DELETE FROM payouts.ledger_entries WHERE id = :id"], {"id": forged})
    assert (await _verify(ledger_db)).ok


async def test_rewritten_history_is_caught_against_a_published_head(ledger_db, entries):
    async with ledger_db.app_engine.connect() as conn:
        head = await ledger.chain_head(conn)
    forged = ledger.records.ChainHead(head.sequence, head.entry_id, "00" * 32, head.recorded_at)
    report = await _verify(ledger_db, expected_head=forged)
    assert not report.ok and report.first_bad_entry_id == head.entry_id and "published head" in report.reason


async def test_edited_posting_time_is_found(ledger_db, entries):
    """Postings carry their entry's times for the as-of indexes; a copy edited alone must show too."""
    target = entries[3]
    edit = "UPDATE payouts.ledger_postings SET effective_at = effective_at {} interval '1 day' WHERE entry_id = :id"
    await _as_superuser(ledger_db, [edit.format("-")], {"id": target.entry_id})
    report = await _verify(ledger_db)
    await _as_superuser(ledger_db, [edit.format("+")], {"id": target.entry_id})
    assert report.first_bad_entry_id == target.entry_id and "time differs" in report.reason
    assert (await _verify(ledger_db)).ok


async def test_a_stale_snapshot_aborts_instead_of_forking_the_chain(ledger_db, entries):
    """A REPEATABLE READ writer whose snapshot predates another append must not chain from the old head."""
    async with ledger_db.app_engine.begin() as conn:
        await ledger.open_accounts(
            conn,
            [
                AccountSpec("chain:other", AccountType.ASSET),
                AccountSpec("chain:other_eq", AccountType.EQUITY),
            ],
        )
    stale = await ledger_db.app_engine.connect()
    try:
        await stale.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        await stale.execute(text("SELECT count(*) FROM payouts.ledger_chain"))  # the snapshot is taken here
        async with ledger_db.app_engine.begin() as conn:  # another writer appends, on other accounts
            await ledger.post_entry(
                conn,
                transfer(uuid.uuid4(), "deposit", debit="chain:other", credit="chain:other_eq", amount=1),
            )
        await ledger.post_entry(
            stale, transfer(uuid.uuid4(), "deposit", debit="chain:cash", credit="chain:equity", amount=1)
        )
        with pytest.raises(Exception) as info:
            await stale.commit()  # only the chain head is shared, and it moved since the snapshot
    finally:
        await stale.close()
    assert isinstance(translate_error(info.value), Aborted)
    report = await _verify(ledger_db)
    assert report.ok and report.entries_checked == len(entries) + 1
