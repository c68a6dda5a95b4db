"""SetStake's orchestration on in-memory fakes: amount, locks, the ledger move, once per request."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from services.payouts.domain import chart
from services.payouts.domain.tournaments import ModelInfo, RoundInfo, RoundRef, SubmissionInfo
from services.payouts.usecases.stakes import Stakes, StakeView
from shared.errors import FailedPrecondition, InvalidArgument

MODEL = ModelInfo("m1", "p1", "t1", "addr")
STAKE, AVAILABLE = chart.staked("p1", "m1"), chart.available("p1")
CHANGED = datetime(2026, 12, 1, tzinfo=UTC)


class FakeDatabase:
    """Connections are a token: the fake store keeps its data itself."""

    def __init__(self) -> None:
        self.transactions = 0

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[str]:
        yield "read"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[str]:
        self.transactions += 1
        yield "write"


class FakeStore:
    """Balances as the ledger keeps them (credits negative), and the entries posted."""

    def __init__(self, balances: dict[str, int], allocated: set[int] | None = None) -> None:
        self.balances_by_code = dict(balances)
        self.allocated_rounds = allocated or set()
        self.locked: list[str] = []
        self.posted: list[Any] = []

    async def lock_model(self, conn: str, model_id: str) -> None:
        assert conn == "write"
        self.locked.append(model_id)

    async def balances(self, conn: str, codes: list[str]) -> dict[str, int]:
        return {c: self.balances_by_code[c] for c in codes if c in self.balances_by_code}

    async def last_change(self, conn: str, code: str) -> datetime | None:
        return CHANGED if code in self.balances_by_code else None

    async def open_accounts(self, conn: str, specs: list[Any]) -> None:
        for spec in specs:
            self.balances_by_code.setdefault(spec.code, 0)

    async def post(self, conn: str, entry: Any) -> None:
        self.posted.append(entry)
        for posting in entry.postings:
            self.balances_by_code[posting.account] += posting.amount

    async def allocated(self, conn: str, tournament_id: str, round_number: int) -> bool:
        return round_number in self.allocated_rounds

    async def allocated_lines(self, conn: str, tournament_id: str, round_number: int) -> list[Any] | None:
        return None


class FakePeers:
    def __init__(self, rounds: dict[int, str] | None = None, submitted: set[int] | None = None) -> None:
        self.round_states = rounds or {}
        self.submitted = submitted or set()

    async def rounds(self, tournament_id: str, state: str) -> list[RoundInfo]:
        return [RoundInfo(RoundRef(tournament_id, n), s) for n, s in self.round_states.items() if s == state]

    async def has_submission(self, ref: RoundRef, model_id: str) -> bool:
        return ref.round_number in self.submitted

    async def latest_submissions(self, ref: RoundRef) -> dict[str, SubmissionInfo]:
        return {"m1": SubmissionInfo("m1", "p1")} if ref.round_number in self.submitted else {}


class Once:
    """The API's idempotency claim: records the first answer, replays it for a repeat."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, conn: str, action: Callable[[], Awaitable[StakeView]]) -> StakeView:
        self.calls.append(conn)
        return await action()


def stakes(store: FakeStore, peers: FakePeers | None = None) -> tuple[Stakes, FakeDatabase]:
    database = FakeDatabase()
    return Stakes(database, peers or FakePeers(), store), database  # type: ignore[arg-type]


async def test_a_new_stake_moves_the_difference_from_available_inside_the_claimed_transaction() -> None:
    store = FakeStore({AVAILABLE: -1_000, STAKE: -200})
    use_case, database = stakes(store)
    once = Once()
    view = await use_case.set_stake(subject="s", request_id="r1", model=MODEL, amount=700, once=once)
    assert view == StakeView("m1", "p1", 700, [], CHANGED)
    assert once.calls == ["write"] and database.transactions == 1 and store.locked == ["m1"]
    [entry] = store.posted
    assert {p.account: p.amount for p in entry.postings} == {AVAILABLE: 500, STAKE: -500}
    assert store.balances_by_code[AVAILABLE] == -500 and store.balances_by_code[STAKE] == -700


async def test_lowering_a_stake_moves_it_back_and_an_unchanged_one_posts_nothing() -> None:
    store = FakeStore({AVAILABLE: 0, STAKE: -300})
    use_case, _ = stakes(store)
    await use_case.set_stake(subject="s", request_id="r1", model=MODEL, amount=100, once=Once())
    assert store.balances_by_code[AVAILABLE] == -200 and store.balances_by_code[STAKE] == -100
    await use_case.set_stake(subject="s", request_id="r2", model=MODEL, amount=100, once=Once())
    assert len(store.posted) == 1


async def test_a_stake_above_the_available_balance_is_refused_with_the_shortfall() -> None:
    store = FakeStore({AVAILABLE: -100})
    use_case, _ = stakes(store)
    with pytest.raises(InvalidArgument) as refused:
        await use_case.set_stake(subject="s", request_id="r1", model=MODEL, amount=250, once=Once())
    assert refused.value.reason == "STAKE_ABOVE_BALANCE"
    assert refused.value.metadata == {"field": "amount_satoshis", "shortfall": "150", "available": "100"}
    assert store.posted == []


async def test_a_negative_amount_is_refused_before_anything_is_read() -> None:
    use_case, database = stakes(FakeStore({}))
    with pytest.raises(InvalidArgument):
        await use_case.set_stake(subject="s", request_id="r1", model=MODEL, amount=-1, once=Once())
    assert database.transactions == 0


async def test_a_stake_at_risk_is_locked_before_any_transaction_opens() -> None:
    store = FakeStore({AVAILABLE: -1_000})
    peers = FakePeers(rounds={3: "OPEN", 4: "CLOSED", 5: "OPEN"}, submitted={3, 4})
    use_case, database = stakes(store, peers)
    once = Once()
    with pytest.raises(FailedPrecondition) as refused:
        await use_case.set_stake(subject="s", request_id="r1", model=MODEL, amount=10, once=once)
    assert refused.value.reason == "STAKE_LOCKED"
    assert "t1 round 3, t1 round 4" in refused.value.message
    assert once.calls == [] and database.transactions == 0


async def test_an_allocated_scored_round_no_longer_locks_and_an_unchanged_stake_is_never_locked() -> None:
    store = FakeStore({AVAILABLE: -1_000, STAKE: -10}, allocated={7})
    peers = FakePeers(rounds={7: "SCORED", 8: "OPEN"}, submitted={7, 8})
    use_case, _ = stakes(store, peers)
    await use_case.set_stake(subject="s", request_id="r1", model=MODEL, amount=10, once=Once())  # unchanged
    with pytest.raises(FailedPrecondition, match="t1 round 8"):
        await use_case.set_stake(subject="s", request_id="r2", model=MODEL, amount=20, once=Once())
    view = await use_case.get(MODEL)
    assert view.amount == 10 and view.locking_rounds == [RoundRef("t1", 8)]


async def test_round_stakes_before_allocation_are_the_current_stakes_of_the_submitters() -> None:
    store = FakeStore({STAKE: -40})
    use_case, _ = stakes(store, FakePeers(submitted={2}))
    assert await use_case.round_stakes(RoundRef("t1", 2)) == [("m1", "p1", 40)]
    assert await use_case.round_stakes(RoundRef("t1", 3)) == []
