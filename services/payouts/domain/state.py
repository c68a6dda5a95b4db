"""The life of a payout batch, as a state machine whose every step is stored before the next begins.

PLANNED (amounts reserved as pending in the ledger) -> SIGNED (raw transaction and txid stored, nothing
broadcast yet) -> BROADCAST -> CONFIRMED (pending postings posted, fee booked); or FAILED -> VOIDED
(pending postings voided, balances payable again). Because SIGNED is stored before any broadcast, a
crash at any point resumes by re-broadcasting the same bytes, never by building a new transaction
that could pay the same people twice.

Moving a SIGNED or BROADCAST batch to FAILED is allowed by the machine but is only safe once the
transaction can never confirm (one of its inputs is spent by a confirmed conflicting transaction);
that proof is the caller's job, because the machine cannot see the chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from shared.errors import FailedPrecondition


class BatchState(StrEnum):
    PLANNED = "PLANNED"
    SIGNED = "SIGNED"
    BROADCAST = "BROADCAST"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    VOIDED = "VOIDED"


TRANSITIONS: dict[BatchState, frozenset[BatchState]] = {
    BatchState.PLANNED: frozenset({BatchState.SIGNED, BatchState.FAILED}),
    BatchState.SIGNED: frozenset({BatchState.BROADCAST, BatchState.FAILED}),
    BatchState.BROADCAST: frozenset({BatchState.CONFIRMED, BatchState.FAILED}),
    BatchState.CONFIRMED: frozenset(),
    BatchState.FAILED: frozenset({BatchState.VOIDED}),
    BatchState.VOIDED: frozenset(),
}

TERMINAL = frozenset(s for s, targets in TRANSITIONS.items() if not targets)


def _names(states: Iterable[BatchState]) -> str:
    names = sorted(s.value for s in states)
    return ", ".join(names) if names else "none (final state)"


def transition(current: BatchState | str, target: BatchState | str, *, batch_id: str = "") -> BatchState:
    """Return ``target`` if the batch may move there from ``current``; otherwise FailedPrecondition.

    The error names the current state and the allowed next states, so an operator retrying a stale
    command sees at once that, say, the batch is already CONFIRMED.
    """
    here, there = BatchState(current), BatchState(target)
    if there not in TRANSITIONS[here]:
        label = f"batch {batch_id}" if batch_id else "batch"
        raise FailedPrecondition(
            f"{label} is {here.value}; it cannot move to {there.value} (allowed from {here.value}: "
            f"{_names(TRANSITIONS[here])})",
            reason="BATCH_STATE",
            metadata={"state": here.value, "target": there.value, "batch": batch_id},
        )
    return there


def require_state(current: BatchState | str, allowed: Iterable[BatchState], *, action: str, batch_id: str = "") -> None:
    """Refuse an action (re-broadcast, fee bump, ...) outside the states where it is safe."""
    here = BatchState(current)
    allowed_set = frozenset(allowed)
    if here not in allowed_set:
        label = f"batch {batch_id}" if batch_id else "batch"
        raise FailedPrecondition(
            f"cannot {action}: {label} is {here.value}, and that needs {_names(allowed_set)}",
            reason="BATCH_STATE",
            metadata={"state": here.value, "batch": batch_id},
        )
