"""The database keeps the ledger honest on its own: raw SQL that bypasses the Python checks is refused."""

from __future__ import annotations

import hashlib
import uuid

import asyncpg
import pytest
from sqlalchemy import text

from services.payouts import ledger
from services.payouts.ledger import AccountSpec, AccountType, transfer
from services.payouts.ledger.pg import translate_error
from shared.errors import FailedPrecondition, InvalidArgument

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def codes() -> dict[str, str]:
    return {"cash": "rules:cash", "equity": "rules:equity"}


async def _ids(ledger_db, codes) -> dict[str, int]:  # type: ignore[no-untyped-def]
    async with ledger_db.app_engine.begin() as conn:
        accounts = await ledger.open_accounts(
            conn,
            [
                AccountSpec(codes["cash"], AccountType.ASSET, non_negative=True),
                AccountSpec(codes["equity"], AccountType.EQUITY),
            ],
        )
    return {a.code: a.id for a in accounts}


async def _raw_entry(conn, entry_id: uuid.UUID, legs: list[tuple[int, int]]) -> None:  # type: ignore[no-untyped-def]
    """Insert an entry and its postings with plain SQL, skipping every Python check."""
    await conn.execute(
        text(
            "INSERT INTO payouts.ledger_entries (id, effective_at, kind, content_hash) VALUES (:id, now(), 'raw', :h)"
        ),
        {"id": entry_id, "h": hashlib.sha256(b"raw").digest()},
    )
    for index, (account_id, amount) in enumerate(legs):
        await conn.execute(
            text(
                "INSERT INTO payouts.ledger_postings (account_id, amount, effective_at, entry_id, idx) "
                "SELECT :a, :m, effective_at, id, :i FROM payouts.ledger_entries WHERE id = :id"
            ),
            {"a": account_id, "m": amount, "i": index, "id": entry_id},
        )


async def _refused_at_commit(engine, work) -> BaseException:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception) as info:
        async with engine.begin() as conn:
            await work(conn)
    return translate_error(info.value)


async def test_unbalanced_entry_is_refused_at_commit_by_the_database(ledger_db, codes):
    ids = await _ids(ledger_db, codes)

    async def unbalanced(conn) -> None:  # type: ignore[no-untyped-def]
        await _raw_entry(conn, uuid.uuid4(), [(ids[codes["cash"]], 5), (ids[codes["equity"]], -4)])

    async def single(conn) -> None:  # type: ignore[no-untyped-def]
        await _raw_entry(conn, uuid.uuid4(), [(ids[codes["cash"]], 5)])

    async def empty(conn) -> None:  # type: ignore[no-untyped-def]
        await _raw_entry(conn, uuid.uuid4(), [])

    for work, message in ((unbalanced, "summing to 1 sat"), (single, "1 posting"), (empty, "0 posting")):
        error = await _refused_at_commit(ledger_db.app_engine, work)
        assert isinstance(error, ledger.UnbalancedEntry) and message in str(error)


async def test_balanced_raw_entry_commits_and_cannot_be_extended_later(ledger_db, codes):
    ids = await _ids(ledger_db, codes)
    entry_id = uuid.uuid4()
    async with ledger_db.app_engine.begin() as conn:
        await _raw_entry(conn, entry_id, [(ids[codes["cash"]], 5), (ids[codes["equity"]], -5)])

    async def extend(conn) -> None:  # type: ignore[no-untyped-def]
        await conn.execute(
            text(
                "INSERT INTO payouts.ledger_postings (account_id, amount, effective_at, entry_id, idx) "
                "SELECT :a, 1, effective_at, id, 9 FROM payouts.ledger_entries WHERE id = :id"
            ),
            {"a": ids[codes["cash"]], "id": entry_id},
        )

    error = await _refused_at_commit(ledger_db.app_engine, extend)
    assert isinstance(error, InvalidArgument) and "already committed" in str(error)


async def test_raw_posting_over_the_limit_is_refused(ledger_db, codes):
    ids = await _ids(ledger_db, codes)

    async def overdraw(conn) -> None:  # type: ignore[no-untyped-def]
        await _raw_entry(conn, uuid.uuid4(), [(ids[codes["cash"]], -(10**9)), (ids[codes["equity"]], 10**9)])

    error = await _refused_at_commit(ledger_db.app_engine, overdraw)
    assert isinstance(error, ledger.LimitExceeded) and error.metadata["account"] == codes["cash"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE payouts.ledger_postings SET amount = amount + 1",
        "DELETE FROM payouts.ledger_postings",
        "UPDATE payouts.ledger_entries SET memo = 'edited'",
        "DELETE FROM payouts.ledger_entries",
        "TRUNCATE payouts.ledger_postings",
        "UPDATE payouts.ledger_balances SET balance = 0",
        "INSERT INTO payouts.ledger_chain (seq, entry_id, hash) VALUES (999999, gen_random_uuid(), sha256('x'))",
        "INSERT INTO payouts.ledger_entries (id, effective_at, recorded_at, kind, content_hash) "
        "VALUES (gen_random_uuid(), now(), now() - interval '1 year', 'x', sha256('x'))",
    ],
)
async def test_application_role_has_no_grant_to_change_history(ledger_db, codes, statement):
    await _ids(ledger_db, codes)
    with pytest.raises(Exception, match="permission denied") as info:
        async with ledger_db.app_engine.begin() as conn:
            await conn.execute(text(statement))
    assert type(translate_error(info.value)).__name__ == "PermissionDenied"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE payouts.ledger_postings SET amount = amount + 1",
        "DELETE FROM payouts.ledger_postings",
        "UPDATE payouts.ledger_entries SET memo = 'edited'",
        "DELETE FROM payouts.ledger_entries",
        "UPDATE payouts.ledger_chain SET hash = sha256('x')",
        "DELETE FROM payouts.ledger_accounts",
        "TRUNCATE payouts.ledger_entries CASCADE",
    ],
)
async def test_triggers_refuse_changes_even_for_the_owner(ledger_db, codes, statement):
    await _ids(ledger_db, codes)
    async with ledger_db.app_engine.begin() as conn:
        await ledger.post_entry(
            conn, transfer(uuid.uuid4(), "deposit", debit=codes["cash"], credit=codes["equity"], amount=1)
        )
    with pytest.raises(Exception, match="append-only") as info:
        async with ledger_db.owner_engine.begin() as conn:
            await conn.execute(text(statement))
    assert isinstance(translate_error(info.value), FailedPrecondition)


async def test_pending_state_changes_only_once_and_only_through_its_entry(ledger_db, codes):
    await _ids(ledger_db, codes)
    async with ledger_db.app_engine.begin() as conn:
        await ledger.open_accounts(
            conn,
            [
                AccountSpec("rules:hold", AccountType.LIABILITY),
                AccountSpec("rules:payee", AccountType.LIABILITY),
            ],
        )
        await ledger.post_entry(
            conn, transfer(uuid.uuid4(), "deposit", debit=codes["cash"], credit=codes["equity"], amount=100)
        )
        pending = await ledger.reserve(
            conn,
            ledger.Reservation(
                uuid.uuid4(),
                uuid.uuid4(),
                debit="rules:payee",
                credit=codes["cash"],
                holding="rules:hold",
                amount=10,
            ),
        )
    with pytest.raises(asyncpg.PostgresError, match="by its own settling entry"):
        async with ledger_db.owner_engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.execute(
                "UPDATE payouts.ledger_pending SET state = 'POSTED', resolved_by = $1 WHERE id = $2",
                pending.reserve_entry_id,
                pending.pending_id,
            )
    with pytest.raises(Exception, match="append-only"):
        async with ledger_db.owner_engine.begin() as conn:
            await conn.execute(text("DELETE FROM payouts.ledger_pending"))
