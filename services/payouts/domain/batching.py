"""Which payable balances go into which payout transaction, and what a transaction of that shape weighs.

Batching is the point of paying in Bitcoin at all: one transaction with N outputs costs about 31 vB
per P2WPKH payee instead of about 140 vB for a transaction per payee (bitcoinops.org/en/payment-
batching). Balances below the dust limit of the payee's output type would make a transaction that
nodes refuse to relay, so they stay payable and roll into a later batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.bitcoin_address import OutputType, decode_address
from shared.errors import InvalidArgument
from shared.money import Satoshis, require_satoshis

DUST_LIMITS: dict[OutputType, Satoshis] = {
    OutputType.P2WPKH: 294,
    OutputType.P2WSH: 330,
    OutputType.P2TR: 330,
    OutputType.P2PKH: 546,
    OutputType.P2SH: 540,
}
"""Bitcoin Core's dust thresholds at the default dustRelayFee of 3 sat/vB: (output + spending input) x 3."""

OUTPUT_VBYTES: dict[OutputType, int] = {
    OutputType.P2WPKH: 31,
    OutputType.P2WSH: 43,
    OutputType.P2TR: 43,
    OutputType.P2PKH: 34,
    OutputType.P2SH: 32,
}
"""Serialized size of one output: 8 (value) + 1 (script length) + the locking script."""

P2WPKH_INPUT_WEIGHT = 41 * 4 + 108
"""A P2WPKH input: 41 non-witness bytes (outpoint, empty scriptSig, sequence) and a 108-byte witness
(item count, a signature of at most 72 bytes with its sighash byte, a 33-byte key, two length bytes).
The platform wallet is native segwit, so every input it spends has this shape."""

MAX_OUTPUTS_PER_TRANSACTION = 2_000
"""Standard transactions weigh at most 400,000 WU (100,000 vB); 2,000 of the largest (43 vB) outputs and
dozens of inputs stay well below it."""


def dust_limit(output_type: OutputType) -> Satoshis:
    """Smallest amount an output of this type may carry and still be relayed."""
    return DUST_LIMITS[output_type]


def _varint_size(n: int) -> int:
    return 1 if n < 0xFD else 3 if n <= 0xFFFF else 5


def estimate_weight(input_count: int, output_types: Sequence[OutputType]) -> int:
    """Upper bound of the weight (WU) of a transaction spending ``input_count`` P2WPKH inputs.

    Exact except for signature length (DER signatures are 71 or 72 bytes; this counts 72), so a fee
    computed from it never pays less than the asked rate.
    """
    if input_count < 1:
        raise InvalidArgument("a transaction needs at least one input", metadata={"field": "input_count"})
    base = 4 + 4 + _varint_size(input_count) + _varint_size(len(output_types))
    base += sum(OUTPUT_VBYTES[t] for t in output_types)
    return base * 4 + 2 + input_count * P2WPKH_INPUT_WEIGHT  # 2: segwit marker and flag


def estimate_vsize(input_count: int, output_types: Sequence[OutputType]) -> int:
    """Virtual size (vB) as nodes price it: weight / 4, rounded up."""
    return math.ceil(estimate_weight(input_count, output_types) / 4)


def clamp_fee_rate(rate: int, ceiling: int) -> int:
    """Keep a fee rate (sat/vB) within [1, ceiling].

    Fee estimators have returned absurd rates (bitcoinlib #201: 104,448 sat/kB while the market was 1-2
    sat/vB); the ceiling caps the damage, and below 1 sat/vB nodes do not relay.
    """
    rate = require_satoshis(rate, "fee rate (sat/vB)", allow_negative=True)
    ceiling = require_satoshis(ceiling, "fee rate ceiling (sat/vB)", allow_zero=False)
    return max(1, min(rate, ceiling))


class HeldReason(StrEnum):
    """Why a payable balance is not in this batch; it stays payable."""

    BELOW_DUST = "BELOW_DUST"
    INVALID_ADDRESS = "INVALID_ADDRESS"


@dataclass(frozen=True)
class PayableBalance:
    """What the ledger says a participant can be paid now, and where to."""

    participant_id: str
    address: str
    amount: Satoshis


@dataclass(frozen=True)
class Payment:
    """One payee output of a batch."""

    participant_id: str
    address: str
    amount: Satoshis
    output_type: OutputType


@dataclass(frozen=True)
class HeldBalance:
    """A balance left out of this batch, with the reason (and the detail for an invalid address)."""

    participant_id: str
    address: str
    amount: Satoshis
    reason: HeldReason
    detail: str = ""


@dataclass(frozen=True)
class PlannedBatch:
    """The payments of one transaction, in output order."""

    payments: tuple[Payment, ...]

    @property
    def total(self) -> Satoshis:
        return sum(p.amount for p in self.payments)

    @property
    def output_types(self) -> tuple[OutputType, ...]:
        return tuple(p.output_type for p in self.payments)


@dataclass(frozen=True)
class BatchPlan:
    batches: tuple[PlannedBatch, ...]
    held: tuple[HeldBalance, ...]


def plan_batches(balances: Iterable[PayableBalance], *, network: str, max_outputs: int = 1_000) -> BatchPlan:
    """Group payable balances into transactions of at most ``max_outputs`` payee outputs each.

    ``max_outputs`` counts payees; each transaction also gets one change output back to the platform.
    Balances at or above their output type's dust limit are paid; smaller ones, and any whose stored
    address no longer decodes for ``network``, are held (never dropped) so the ledger keeps them payable.
    Payments are ordered by participant then address, so the same balances always give the same batches;
    a plan with more than one transaction is split into near-equal parts.
    """
    if (
        isinstance(max_outputs, bool)
        or not isinstance(max_outputs, int)
        or not (1 <= max_outputs <= MAX_OUTPUTS_PER_TRANSACTION)
    ):
        raise InvalidArgument(
            f"max_outputs must be an integer from 1 to {MAX_OUTPUTS_PER_TRANSACTION}, not {max_outputs!r}",
            metadata={"field": "max_outputs"},
        )
    paid: list[Payment] = []
    held: list[HeldBalance] = []
    seen: set[str] = set()
    for balance in sorted(balances, key=lambda b: (b.participant_id, b.address)):
        if balance.participant_id in seen:
            raise InvalidArgument(
                f"participant {balance.participant_id} has two payable balances; merge them before planning",
                metadata={"field": "participant_id"},
            )
        seen.add(balance.participant_id)
        amount = require_satoshis(balance.amount, f"payable balance of participant {balance.participant_id}")
        try:
            output_type = decode_address(balance.address, network).output_type
        except InvalidArgument as exc:
            held.append(
                HeldBalance(balance.participant_id, balance.address, amount, HeldReason.INVALID_ADDRESS, exc.message)
            )
            continue
        if amount < DUST_LIMITS[output_type]:
            held.append(
                HeldBalance(
                    balance.participant_id,
                    balance.address,
                    amount,
                    HeldReason.BELOW_DUST,
                    f"{amount} sat is below the {output_type} dust limit of {DUST_LIMITS[output_type]} sat",
                )
            )
            continue
        paid.append(Payment(balance.participant_id, balance.address, amount, output_type))
    count = math.ceil(len(paid) / max_outputs)
    batches = []
    start = 0
    for i in range(count):
        size = len(paid) // count + (1 if i < len(paid) % count else 0)
        batches.append(PlannedBatch(tuple(paid[start : start + size])))
        start += size
    return BatchPlan(tuple(batches), tuple(held))
