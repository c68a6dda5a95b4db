"""Property test: random sequences of transfers, batches, reversals, replays, reservations and failures.

A plain-Python model predicts each operation's outcome (limits decide which succeed); after every
sequence the database must agree with the model, every stored balance must equal the sum of its
postings, the trial balance must be zero, no limit may be broken, and the chain must verify.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.payouts import ledger
from services.payouts.ledger import AccountSpec, AccountType, EntrySpec, PostingSpec, Reservation, Settlement
from shared.errors import AlreadyExists, DomainError, FailedPrecondition, NotFound

pytestmark = pytest.mark.asyncio(loop_scope="module")

# (type, non_negative, non_positive); the last account holds reservations in flight.
ACCOUNTS = [
    (AccountType.ASSET, True, False),
    (AccountType.LIABILITY, False, True),
    (AccountType.EQUITY, False, False),
    (AccountType.ASSET, True, False),
    (AccountType.LIABILITY, False, True),
]
HOLD = 4
PLAIN = range(HOLD)

amounts = st.integers(min_value=1, max_value=300)
pairs = st.tuples(st.sampled_from(PLAIN), st.sampled_from(PLAIN)).filter(lambda p: p[0] != p[1])
operations = st.one_of(
    st.tuples(st.just("transfer"), pairs, amounts),
    st.tuples(st.just("batch"), st.lists(st.tuples(pairs, amounts), min_size=1, max_size=4)),
    st.tuples(st.just("reverse"), st.integers(0, 30)),
    st.tuples(st.just("replay"), st.integers(0, 30), st.booleans()),
    st.tuples(st.just("unknown"), amounts),
    st.tuples(st.just("reserve"), pairs, amounts),
    st.tuples(st.just("settle"), st.integers(0, 10), st.booleans(), st.integers(0, 300)),
)


@dataclass
class Model:
    codes: list[str]
    balances: list[int] = field(default_factory=lambda: [0] * len(ACCOUNTS))
    entries: list[EntrySpec] = field(default_factory=list)
    reversed: set[uuid.UUID] = field(default_factory=set)
    pendings: list[tuple[Reservation, str]] = field(default_factory=list)

    def allows(self, changes: dict[int, int]) -> bool:
        for index, delta in changes.items():
            new = self.balances[index] + delta
            _, non_negative, non_positive = ACCOUNTS[index]
            if (non_negative and new < 0) or (non_positive and new > 0):
                return False
        return True

    def apply(self, changes: dict[int, int]) -> None:
        for index, delta in changes.items():
            self.balances[index] += delta


def _entry(model: Model, debit: int, credit: int, amount: int) -> EntrySpec:
    return ledger.transfer(
        uuid.uuid4(), "transfer", debit=model.codes[debit], credit=model.codes[credit], amount=amount
    )


def _changes(model: Model, specs: list[EntrySpec]) -> dict[int, int]:
    changes: dict[int, int] = {}
    for spec in specs:
        for posting in spec.postings:
            index = model.codes.index(posting.account)
            changes[index] = changes.get(index, 0) + posting.amount
    return changes


async def _run(conn, model: Model, op: tuple) -> tuple[type[DomainError] | None, dict[int, int]]:  # type: ignore[no-untyped-def]
    """Perform one operation; return the error the model expected (None: success) and the balance changes."""
    kind = op[0]
    if kind in ("transfer", "batch"):
        specs = [_entry(model, *op[1], op[2])] if kind == "transfer" else [_entry(model, *p, a) for p, a in op[1]]
        changes = _changes(model, specs)
        if not model.allows(changes):
            with pytest.raises(ledger.LimitExceeded):
                await ledger.post_entries(conn, specs)
            return ledger.LimitExceeded, {}
        await ledger.post_entries(conn, specs)
        model.entries.extend(specs)
        return None, changes
    if kind == "reverse" and op[1] < len(model.entries):
        original = model.entries[op[1]]
        if original.id in model.reversed:
            with pytest.raises(FailedPrecondition, match="already reversed"):
                await ledger.reverse_entry(conn, uuid.uuid4(), original.id)
            return FailedPrecondition, {}
        changes = {k: -v for k, v in _changes(model, [original]).items()}
        if not model.allows(changes):
            with pytest.raises(ledger.LimitExceeded):
                await ledger.reverse_entry(conn, uuid.uuid4(), original.id)
            return ledger.LimitExceeded, {}
        await ledger.reverse_entry(conn, uuid.uuid4(), original.id)
        model.reversed.add(original.id)
        return None, changes
    if kind == "replay" and op[1] < len(model.entries):
        original = model.entries[op[1]]
        if op[2]:
            result = await ledger.post_entry(conn, original)
            assert not result.created
            return None, {}
        changed = EntrySpec(
            original.id, original.kind, [PostingSpec(p.account, p.amount * 2) for p in original.postings]
        )
        with pytest.raises(AlreadyExists):
            await ledger.post_entry(conn, changed)
        return AlreadyExists, {}
    if kind == "unknown":
        with pytest.raises(NotFound):
            await ledger.post_entry(
                conn,
                ledger.transfer(uuid.uuid4(), "transfer", debit=model.codes[0], credit="nobody:at:all", amount=op[1]),
            )
        return NotFound, {}
    if kind == "reserve":
        (debit, credit), amount = op[1], op[2]
        reservation = Reservation(
            uuid.uuid4(), uuid.uuid4(), model.codes[debit], model.codes[credit], model.codes[HOLD], amount
        )
        changes = {debit: amount, HOLD: -amount}
        if not model.allows(changes):
            with pytest.raises(ledger.LimitExceeded):
                await ledger.reserve(conn, reservation)
            return ledger.LimitExceeded, {}
        await ledger.reserve(conn, reservation)
        model.pendings.append((reservation, "PENDING"))
        return None, changes
    if kind == "settle" and op[1] < len(model.pendings):
        reservation, state = model.pendings[op[1]]
        void, part = op[2], min(op[3], reservation.amount) or reservation.amount
        settlement = Settlement(reservation.pending_id, uuid.uuid4(), void=void, amount=None if void else part)
        if state != "PENDING":
            with pytest.raises(FailedPrecondition, match="resolves once"):
                await ledger.settle_many(conn, [settlement])
            return FailedPrecondition, {}
        debit, credit = model.codes.index(reservation.debit), model.codes.index(reservation.credit)
        paid = 0 if void else part
        changes = {HOLD: reservation.amount, debit: -(reservation.amount - paid)}
        changes[credit] = changes.get(credit, 0) - paid
        if not model.allows(changes):
            with pytest.raises(ledger.LimitExceeded):
                await ledger.settle_many(conn, [settlement])
            return ledger.LimitExceeded, {}
        await ledger.settle_many(conn, [settlement])
        model.pendings[op[1]] = (reservation, "VOIDED" if void else "POSTED")
        return None, changes
    return None, {}


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operations, min_size=1, max_size=14))
async def test_random_operations_keep_the_ledger_consistent(ledger_db, ops):
    prefix = f"prop{uuid.uuid4().hex[:10]}"
    model = Model([f"{prefix}:{i}" for i in range(len(ACCOUNTS))])
    async with ledger_db.app_engine.begin() as conn:
        await ledger.open_accounts(
            conn,
            [AccountSpec(code, kind, nn, np) for code, (kind, nn, np) in zip(model.codes, ACCOUNTS, strict=True)],
        )
    for op in ops:
        async with ledger_db.app_engine.connect() as conn:
            await conn.begin()
            expected, changes = await _run(conn, model, op)
            if expected is None:
                await conn.commit()
                model.apply(changes)
            else:
                await conn.rollback()

    async with ledger_db.app_engine.connect() as conn:
        stored = [(await ledger.get_balance(conn, code)).balance for code in model.codes]
        assert stored == model.balances
        for balance, (_, non_negative, non_positive) in zip(stored, ACCOUNTS, strict=True):
            assert not (non_negative and balance < 0) and not (non_positive and balance > 0)
        assert await ledger.check_balances(conn) == []
        trial = await ledger.trial_balance(conn)
        assert trial.balanced and sum(line.balance for line in trial.lines) == 0


async def test_chain_verifies_after_the_random_operations(ledger_db):
    async with ledger_db.app_engine.begin() as conn:
        report = await ledger.verify_chain(conn)
    assert report.ok, report
