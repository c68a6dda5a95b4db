"""Two-phase transfers: reserve, then post (fully or partly) or void, exactly once."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.payouts import ledger
from services.payouts.ledger import AccountSpec, AccountType, PendingState, Reservation, Settlement, transfer
from shared.errors import AlreadyExists, FailedPrecondition, InvalidArgument

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _setup(engine, owed: int = 1_000) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A wallet holding 10,000 sat, a participant owed ``owed`` sat, and the in-flight holding account."""
    p = f"p{uuid.uuid4().hex[:8]}"
    codes = {
        "wallet": f"{p}:wallet",
        "equity": f"{p}:equity",
        "payable": f"{p}:payable",
        "hold": f"{p}:in_flight",
    }
    async with engine.begin() as conn:
        await ledger.open_accounts(
            conn,
            [
                AccountSpec(codes["wallet"], AccountType.ASSET, non_negative=True),
                AccountSpec(codes["equity"], AccountType.EQUITY),
                AccountSpec(codes["payable"], AccountType.LIABILITY, non_positive=True, owner=f"participants/{p}"),
                AccountSpec(codes["hold"], AccountType.LIABILITY, non_positive=True),
            ],
        )
        await ledger.post_entries(
            conn,
            [
                transfer(uuid.uuid4(), "deposit", debit=codes["wallet"], credit=codes["equity"], amount=10_000),
                transfer(uuid.uuid4(), "allocation", debit=codes["equity"], credit=codes["payable"], amount=owed),
            ],
        )
    return codes


def _reservation(codes: dict[str, str], amount: int) -> Reservation:
    return Reservation(
        uuid.uuid4(),
        uuid.uuid4(),
        debit=codes["payable"],
        credit=codes["wallet"],
        holding=codes["hold"],
        amount=amount,
        memo="payout",
    )


async def _balances(engine, codes: dict[str, str]) -> dict[str, tuple[int, int]]:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        found = {}
        for name, code in codes.items():
            balance = await ledger.get_balance(conn, code)
            found[name] = (balance.balance, balance.pending)
        return found


async def test_reserve_then_post_in_full(ledger_db):
    codes = await _setup(ledger_db.app_engine)
    reservation = _reservation(codes, 600)
    async with ledger_db.app_engine.begin() as conn:
        pending = await ledger.reserve(conn, reservation)
        entry = await ledger.get_entry(conn, pending.reserve_entry_id)
    assert pending.state == PendingState.PENDING and entry.pending and entry.kind == "pending.reserve"
    balances = await _balances(ledger_db.app_engine, codes)
    assert balances["payable"] == (-400, 600) and balances["hold"] == (-600, -600)
    assert balances["wallet"] == (10_000, 0)  # the wallet pays only when posted

    post_id = uuid.uuid4()
    async with ledger_db.app_engine.begin() as conn:
        posted = await ledger.post_pending(conn, reservation.pending_id, post_id)
        reserve_entry = await ledger.get_entry(conn, pending.reserve_entry_id)
        post_entry = await ledger.get_entry(conn, post_id)
    assert posted.state == PendingState.POSTED and posted.posted_amount == 600 and posted.resolved_by == post_id
    assert not reserve_entry.pending and post_entry.settles_entry_id == pending.reserve_entry_id
    balances = await _balances(ledger_db.app_engine, codes)
    assert balances == {"wallet": (9_400, 0), "equity": (-9_000, 0), "payable": (-400, 0), "hold": (0, 0)}


async def test_partial_post_returns_the_rest(ledger_db):
    codes = await _setup(ledger_db.app_engine)
    reservation = _reservation(codes, 600)
    async with ledger_db.app_engine.begin() as conn:
        await ledger.reserve(conn, reservation)
        posted = await ledger.post_pending(conn, reservation.pending_id, uuid.uuid4(), amount=450)
    assert posted.posted_amount == 450
    balances = await _balances(ledger_db.app_engine, codes)
    assert balances["wallet"] == (9_550, 0) and balances["payable"] == (-550, 0) and balances["hold"] == (0, 0)
    with pytest.raises(InvalidArgument, match="use void_pending"):
        async with ledger_db.app_engine.begin() as conn:
            await ledger.reserve(conn, reservation2 := _reservation(codes, 10))
            await ledger.post_pending(conn, reservation2.pending_id, uuid.uuid4(), amount=0)


async def test_void_returns_everything(ledger_db):
    codes = await _setup(ledger_db.app_engine)
    reservation = _reservation(codes, 700)
    async with ledger_db.app_engine.begin() as conn:
        await ledger.reserve(conn, reservation)
    async with ledger_db.app_engine.begin() as conn:
        voided = await ledger.void_pending(conn, reservation.pending_id, uuid.uuid4(), memo="batch failed")
    assert voided.state == PendingState.VOIDED and voided.posted_amount == 0
    assert await _balances(ledger_db.app_engine, codes) == {
        "wallet": (10_000, 0),
        "equity": (-9_000, 0),
        "payable": (-1_000, 0),
        "hold": (0, 0),
    }


async def test_reserving_more_than_owed_is_refused(ledger_db):
    codes = await _setup(ledger_db.app_engine, owed=100)
    async with ledger_db.app_engine.begin() as conn:
        await ledger.reserve(conn, _reservation(codes, 80))
    with pytest.raises(ledger.LimitExceeded, match=f"account {codes['payable']} may not go above zero"):
        async with ledger_db.app_engine.begin() as conn:
            await ledger.reserve(conn, _reservation(codes, 30))  # only 20 left to reserve


async def test_resolves_once_and_retries_return_the_first_outcome(ledger_db):
    codes = await _setup(ledger_db.app_engine)
    reservation = _reservation(codes, 100)
    post_id = uuid.uuid4()
    async with ledger_db.app_engine.begin() as conn:
        first = await ledger.reserve(conn, reservation)
    async with ledger_db.app_engine.begin() as conn:
        again = await ledger.reserve(conn, reservation)
        posted = await ledger.post_pending(conn, reservation.pending_id, post_id)
    async with ledger_db.app_engine.begin() as conn:
        repeated = await ledger.post_pending(conn, reservation.pending_id, post_id)
    assert again == first and repeated == posted
    with pytest.raises(FailedPrecondition, match="already POSTED"):
        async with ledger_db.app_engine.begin() as conn:
            await ledger.void_pending(conn, reservation.pending_id, uuid.uuid4())
    with pytest.raises(AlreadyExists, match="already used by reservation entry"):
        async with ledger_db.app_engine.begin() as conn:
            await ledger.reserve(
                conn,
                Reservation(
                    reservation.pending_id,
                    uuid.uuid4(),
                    codes["payable"],
                    codes["wallet"],
                    codes["hold"],
                    100,
                ),
            )


async def test_concurrent_post_and_void_one_wins(ledger_db):
    codes = await _setup(ledger_db.app_engine)
    reservations = [_reservation(codes, 50) for _ in range(6)]
    async with ledger_db.app_engine.begin() as conn:
        await ledger.reserve_many(conn, reservations)

    async def settle(reservation: Reservation, void: bool) -> str:
        try:
            async with ledger_db.app_engine.begin() as conn:
                result = await ledger.settle_many(conn, [Settlement(reservation.pending_id, uuid.uuid4(), void)])
            return result[0].state.value
        except FailedPrecondition:
            return "refused"

    outcomes = await asyncio.gather(*(settle(r, void) for r in reservations for void in (False, True)))
    for pair in zip(outcomes[::2], outcomes[1::2], strict=True):
        assert sorted(pair) in (["POSTED", "refused"], ["VOIDED", "refused"])
    balances = await _balances(ledger_db.app_engine, codes)
    posted = outcomes.count("POSTED") * 50
    assert balances["hold"] == (0, 0) and balances["wallet"] == (10_000 - posted, 0)
    assert balances["payable"] == (-1_000 + posted, 0)
