"""Batch planning, dust, fee rates, size estimates and coin selection (pure code, no wallet)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.payouts.domain.batching import (
    DUST_LIMITS,
    HeldReason,
    PayableBalance,
    clamp_fee_rate,
    dust_limit,
    estimate_vsize,
    plan_batches,
)
from services.payouts.domain.coins import Coin, fee_and_change, plan_fee_bump, select_coins
from shared.bitcoin_address import OutputType
from shared.errors import FailedPrecondition, InvalidArgument

NET = "bitcoinlib_test"


def test_dust_limits_per_output_type() -> None:
    assert {t.value: dust_limit(t) for t in OutputType} == {
        "p2wpkh": 294,
        "p2wsh": 330,
        "p2tr": 330,
        "p2pkh": 546,
        "p2sh": 540,
    }


def test_balances_at_the_dust_limit_are_paid_and_below_it_held(chain) -> None:
    balances = []
    for seed in range(2):
        for kind, address in chain.blt_addresses(seed).items():
            limit = DUST_LIMITS[OutputType(kind)]
            amount = limit if seed == 0 else limit - 1
            balances.append(PayableBalance(f"{kind}-{seed}", address, amount))
    plan = plan_batches(balances, network=NET)
    paid = [p for batch in plan.batches for p in batch.payments]
    assert sorted(p.participant_id for p in paid) == sorted(f"{k}-0" for k in chain.blt_addresses(0))
    assert all(p.amount == DUST_LIMITS[p.output_type] for p in paid)
    assert sorted(h.participant_id for h in plan.held) == sorted(f"{k}-1" for k in chain.blt_addresses(1))
    assert all(h.reason is HeldReason.BELOW_DUST and "dust limit" in h.detail for h in plan.held)


def test_invalid_or_wrong_network_addresses_are_held_not_dropped(chain) -> None:
    good = chain.blt_addresses(1)["p2wpkh"]
    plan = plan_batches(
        [
            PayableBalance("ok", good, 10_000),
            PayableBalance("mainnet", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", 10_000),
            PayableBalance("typo", good[:-1] + ("q" if good[-1] != "q" else "p"), 10_000),
            PayableBalance("zero", good, 0),
        ],
        network=NET,
    )
    assert [p.participant_id for b in plan.batches for p in b.payments] == ["ok"]
    reasons = {h.participant_id: h.reason for h in plan.held}
    assert reasons == {
        "mainnet": HeldReason.INVALID_ADDRESS,
        "typo": HeldReason.INVALID_ADDRESS,
        "zero": HeldReason.BELOW_DUST,
    }


def test_batches_are_split_evenly_and_deterministically(chain) -> None:
    balances = [PayableBalance(f"p{i:04d}", chain.blt_addresses(i)["p2wpkh"], 1_000 + i) for i in range(250)]
    plan = plan_batches(reversed(balances), network=NET, max_outputs=100)
    assert [len(b.payments) for b in plan.batches] == [84, 83, 83]
    ids = [p.participant_id for b in plan.batches for p in b.payments]
    assert ids == sorted(b.participant_id for b in balances)  # each once, in a stable order
    assert sum(b.total for b in plan.batches) == sum(b.amount for b in balances)
    assert plan == plan_batches(balances, network=NET, max_outputs=100)
    assert plan_batches([], network=NET).batches == ()


@pytest.mark.parametrize("max_outputs", [0, -1, 2001, 1.5, True])
def test_max_outputs_must_be_sane(max_outputs) -> None:
    with pytest.raises(InvalidArgument, match="max_outputs"):
        plan_batches([], network=NET, max_outputs=max_outputs)


def test_planning_refuses_bad_balances(chain) -> None:
    address = chain.blt_addresses(0)["p2wpkh"]
    with pytest.raises(InvalidArgument, match="two payable balances"):
        plan_batches([PayableBalance("a", address, 1_000), PayableBalance("a", address, 2_000)], network=NET)
    with pytest.raises(InvalidArgument, match="negative"):
        plan_batches([PayableBalance("a", address, -1)], network=NET)
    with pytest.raises(InvalidArgument, match="integer number of satoshis"):
        plan_batches([PayableBalance("a", address, 1_000.0)], network=NET)  # type: ignore[arg-type]


@pytest.mark.parametrize(("rate", "ceiling", "expected"), [(0, 50, 1), (-5, 50, 1), (7, 50, 7), (900, 50, 50)])
def test_fee_rate_is_clamped(rate: int, ceiling: int, expected: int) -> None:
    assert clamp_fee_rate(rate, ceiling) == expected


@pytest.mark.parametrize(("rate", "ceiling"), [(1.5, 50), (5, 0), (5, 2.0), (True, 5)])
def test_fee_rate_must_be_integers(rate, ceiling) -> None:
    with pytest.raises(InvalidArgument):
        clamp_fee_rate(rate, ceiling)


def test_vsize_estimates_match_the_batching_literature() -> None:
    p2wpkh = OutputType.P2WPKH
    assert estimate_vsize(1, [p2wpkh, p2wpkh]) == 141  # bitcoinops: ~140 vB for one payment with change
    assert estimate_vsize(1, [p2wpkh] * 1_001) == 31_112  # 1,000 payees and change (platform-facts)
    assert estimate_vsize(2, [OutputType.P2TR]) == estimate_vsize(1, [OutputType.P2TR]) + 68
    assert estimate_vsize(1, [OutputType.P2PKH]) - estimate_vsize(1, [OutputType.P2WPKH]) == 3
    with pytest.raises(InvalidArgument):
        estimate_vsize(0, [p2wpkh])


# --- coin selection -------------------------------------------------------------------------------------


def _coins(*values: int) -> list[Coin]:
    return [Coin(f"{i:064x}", i % 3, v) for i, v in enumerate(values)]


def test_select_coins_takes_the_largest_first() -> None:
    coins = _coins(5_000, 100_000_000, 20_000)
    selection = select_coins(coins, [OutputType.P2WPKH], 50_000, 2)
    assert [c.value for c in selection.coins] == [100_000_000]
    assert selection.vsize == estimate_vsize(1, [OutputType.P2WPKH] * 2)
    assert selection.fee == 2 * selection.vsize
    assert selection.input_total == 50_000 + selection.fee + selection.change


def test_select_coins_adds_inputs_until_covered() -> None:
    selection = select_coins(_coins(30_000, 30_000, 30_000), [OutputType.P2WPKH], 50_000, 1)
    assert len(selection.coins) == 2


def test_change_below_dust_goes_to_the_fee() -> None:
    payments = [OutputType.P2WPKH]
    vsize = estimate_vsize(1, [*payments, OutputType.P2WPKH])
    coin_value = 10_000 + vsize + 293  # change would be 293 sat, one below the dust limit
    selection = select_coins(_coins(coin_value), payments, 10_000, 1)
    assert selection.change == 0
    assert selection.fee == coin_value - 10_000
    assert selection.vsize == estimate_vsize(1, payments)


def test_insufficient_funds_names_what_is_missing() -> None:
    with pytest.raises(FailedPrecondition) as err:
        select_coins(_coins(1_000, 2_000), [OutputType.P2WPKH], 5_000, 3)
    assert err.value.reason == "INSUFFICIENT_FUNDS"
    assert "3000 sat spendable" in err.value.message


@settings(max_examples=300, deadline=None)
@given(
    coins=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=8),
    payments=st.lists(st.sampled_from(list(OutputType)), min_size=1, max_size=30),
    total=st.integers(min_value=1, max_value=3 * 10**9),
    rate=st.integers(min_value=1, max_value=500),
)
def test_selection_never_creates_or_loses_a_satoshi(coins, payments, total, rate) -> None:
    try:
        selection = select_coins(_coins(*coins), payments, total, rate)
    except FailedPrecondition:
        assert sum(coins) < total + rate * estimate_vsize(len(coins), payments)
        return
    assert selection.input_total == total + selection.fee + selection.change
    assert selection.change == 0 or selection.change >= DUST_LIMITS[OutputType.P2WPKH]
    assert selection.fee >= rate * selection.vsize
    assert Counter(selection.coins) <= Counter(_coins(*coins))


# --- fee bump -------------------------------------------------------------------------------------------


def test_fee_bump_lowers_only_the_change_and_follows_bip125() -> None:
    payments = [OutputType.P2WPKH] * 10
    first = fee_and_change(1, 1_000_000, payments, 500_000, 2)
    assert first is not None and first.change > 0
    bump = plan_fee_bump(
        input_count=1,
        input_total=1_000_000,
        payment_types=payments,
        payment_total=500_000,
        old_fee=first.fee,
        old_vsize=first.vsize,
        new_fee_rate=10,
    )
    assert bump.fee == 10 * bump.vsize
    assert bump.fee >= first.fee + bump.vsize  # BIP125 rule 4 at 1 sat/vB incremental relay
    assert bump.change == first.change - (bump.fee - first.fee)


def test_fee_bump_must_raise_the_fee() -> None:
    with pytest.raises(InvalidArgument, match="does not raise"):
        plan_fee_bump(
            input_count=1,
            input_total=1_000_000,
            payment_types=[OutputType.P2WPKH],
            payment_total=500_000,
            old_fee=1_410,
            old_vsize=141,
            new_fee_rate=10,
        )


def test_fee_bump_beyond_the_change_is_refused() -> None:
    with pytest.raises(FailedPrecondition) as err:
        plan_fee_bump(
            input_count=1,
            input_total=510_000,
            payment_types=[OutputType.P2WPKH],
            payment_total=500_000,
            old_fee=282,
            old_vsize=141,
            new_fee_rate=100,
        )
    assert err.value.reason == "FEE_BUMP_TOO_LARGE"


def test_fee_bump_may_drop_a_change_that_became_dust() -> None:
    payments = [OutputType.P2WPKH]
    with_change = estimate_vsize(1, [*payments, OutputType.P2WPKH])
    input_total = 100_000 + 3 * with_change + 200  # change at 3 sat/vB would be 200 sat: dust
    bump = plan_fee_bump(
        input_count=1,
        input_total=input_total,
        payment_types=payments,
        payment_total=100_000,
        old_fee=with_change,
        old_vsize=with_change,
        new_fee_rate=3,
    )
    assert bump.change == 0 and bump.fee == input_total - 100_000
