"""Which of the platform wallet's coins pay a batch, what fee it pays, and what comes back as change.

Kept apart from the wallet so the arithmetic that decides how much leaves the platform is plain code
with plain tests: inputs = payments + fee + change, exactly, with the fee never below the asked rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.payouts.domain.batching import DUST_LIMITS, estimate_vsize
from shared.bitcoin_address import OutputType
from shared.errors import FailedPrecondition, InvalidArgument
from shared.money import Satoshis, require_satoshis

CHANGE_TYPE = OutputType.P2WPKH
"""The platform wallet is native segwit (BIP84), so its change outputs are P2WPKH."""

INCREMENTAL_RELAY_RATE = 1
"""sat/vB a replacement must add on top of the fee it replaces (BIP125 rule 4, Bitcoin Core default)."""


@dataclass(frozen=True)
class Coin:
    """An unspent output of the platform wallet."""

    txid: str
    vout: int
    value: Satoshis


@dataclass(frozen=True)
class FeePlan:
    """Fee and change for a fixed set of inputs and payments (``change`` 0 means no change output)."""

    fee: Satoshis
    change: Satoshis
    vsize: int
    """Estimated virtual size (an upper bound, see ``estimate_weight``)."""


@dataclass(frozen=True)
class CoinSelection:
    coins: tuple[Coin, ...]
    fee: Satoshis
    change: Satoshis
    vsize: int

    @property
    def input_total(self) -> Satoshis:
        return sum(c.value for c in self.coins)


def fee_and_change(
    input_count: int,
    input_total: Satoshis,
    payment_types: Sequence[OutputType],
    payment_total: Satoshis,
    fee_rate: int,
    *,
    min_fee: Satoshis = 0,
) -> FeePlan | None:
    """Fee and change when these inputs pay these payments at ``fee_rate`` sat/vB, or None if short.

    With a change output the fee is ``rate x vsize`` (or ``min_fee`` if higher). If the change would be
    below the dust limit it is left out and goes to the fee instead: a dust output is not relayed, and
    it would cost more to spend than it holds.
    """
    with_change = estimate_vsize(input_count, [*payment_types, CHANGE_TYPE])
    fee = max(fee_rate * with_change, min_fee)
    change = input_total - payment_total - fee
    if change >= DUST_LIMITS[CHANGE_TYPE]:
        return FeePlan(fee, change, with_change)
    without_change = estimate_vsize(input_count, payment_types)
    fee = input_total - payment_total
    if fee >= max(fee_rate * without_change, min_fee):
        return FeePlan(fee, 0, without_change)
    return None


def select_coins(
    coins: Sequence[Coin], payment_types: Sequence[OutputType], payment_total: Satoshis, fee_rate: int
) -> CoinSelection:
    """Choose coins largest first until they cover the payments and the fee.

    Largest-first keeps the input count (68 vB each) low, which is what a payout batch is priced on.
    Ties go by (txid, vout) so the same wallet state always gives the same transaction.
    Raises FailedPrecondition (reason INSUFFICIENT_FUNDS) naming what the wallet has and what is needed.
    """
    payment_total = require_satoshis(payment_total, "payment total", allow_zero=False)
    fee_rate = require_satoshis(fee_rate, "fee rate (sat/vB)", allow_zero=False)
    if not payment_types:
        raise InvalidArgument("a batch needs at least one payment", metadata={"field": "payments"})
    ordered = sorted(coins, key=lambda c: (-c.value, c.txid, c.vout))
    chosen: list[Coin] = []
    total = 0
    for coin in ordered:
        chosen.append(coin)
        total += require_satoshis(coin.value, f"value of coin {coin.txid}:{coin.vout}", allow_zero=False)
        plan = fee_and_change(len(chosen), total, payment_types, payment_total, fee_rate)
        if plan is not None:
            return CoinSelection(tuple(chosen), plan.fee, plan.change, plan.vsize)
    needed = payment_total + fee_rate * estimate_vsize(max(1, len(ordered)), [*payment_types, CHANGE_TYPE])
    raise FailedPrecondition(
        f"platform wallet has {total} sat spendable in {len(ordered)} coins; this batch needs about "
        f"{needed} sat ({payment_total} sat of payments plus fee at {fee_rate} sat/vB). Fund the wallet "
        "or pay a smaller batch.",
        reason="INSUFFICIENT_FUNDS",
        metadata={"spendable": str(total), "needed": str(needed)},
    )


def plan_fee_bump(
    *,
    input_count: int,
    input_total: Satoshis,
    payment_types: Sequence[OutputType],
    payment_total: Satoshis,
    old_fee: Satoshis,
    old_vsize: int,
    new_fee_rate: int,
) -> FeePlan:
    """Fee and change of a replacement that spends the same inputs and pays the same payments.

    Same inputs make the replacement conflict with every earlier version, so at most one of them can
    ever confirm (never a double payment); only the change shrinks. BIP125 asks the replacement to pay
    at least the old fee plus 1 sat/vB of its own size; a rate that does not beat the old one is an error
    rather than a silent no-op.
    """
    if new_fee_rate * old_vsize <= old_fee:
        raise InvalidArgument(
            f"new fee rate {new_fee_rate} sat/vB does not raise the current fee of {old_fee} sat "
            f"({old_vsize} vB); ask for a higher rate",
            metadata={"field": "fee_rate"},
        )
    size_with_change = estimate_vsize(input_count, [*payment_types, CHANGE_TYPE])
    min_fee = old_fee + INCREMENTAL_RELAY_RATE * size_with_change
    plan = fee_and_change(input_count, input_total, payment_types, payment_total, new_fee_rate, min_fee=min_fee)
    if plan is None:
        available = input_total - payment_total
        raise FailedPrecondition(
            f"cannot raise the fee to {new_fee_rate} sat/vB with the same inputs: only {available} sat are "
            "left over the payments. Wait for confirmation or use a lower rate.",
            reason="FEE_BUMP_TOO_LARGE",
            metadata={"available": str(available)},
        )
    return plan
