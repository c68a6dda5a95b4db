"""The round lifecycle: OPEN -> CLOSED -> RESOLVED -> SCORED -> PAID, one step at a time.

Why strictly linear: each step depends on the previous one having happened (scores need revealed
targets, payouts need scores), and the pipeline is driven by idempotent RPCs that may be retried
after a crash. So a transition either moves exactly one step forward, or finds the round already
in the requested state (reported as UNCHANGED: whether that is an idempotent repeat or a
conflict is for the service layer to decide, e.g. by the request id), or is refused with
FAILED_PRECONDITION naming the current state and what would be allowed.
"""

from __future__ import annotations

import enum

from shared.errors import FailedPrecondition, InvalidArgument

from .errors import IllegalTransition


class RoundState(enum.IntEnum):
    """Numbers match ``Round.State`` in the proto (0 = unspecified, never a real state)."""

    OPEN = 1
    CLOSED = 2
    RESOLVED = 3
    SCORED = 4
    PAID = 5


class Transition(enum.Enum):
    CHANGED = "changed"  # the round moves to the requested state
    UNCHANGED = "unchanged"  # it is already there


_NEXT: dict[RoundState, RoundState | None] = {
    RoundState.OPEN: RoundState.CLOSED,
    RoundState.CLOSED: RoundState.RESOLVED,
    RoundState.RESOLVED: RoundState.SCORED,
    RoundState.SCORED: RoundState.PAID,
    RoundState.PAID: None,
}


def as_state(value: RoundState | int) -> RoundState:
    """A state from its number, refusing 0 (unspecified) and unknown numbers."""
    try:
        return RoundState(int(value))
    except ValueError:
        names = ", ".join(f"{s.name} ({s.value})" for s in RoundState)
        raise InvalidArgument(f"unknown round state {value}; states are {names}") from None


def next_state(current: RoundState | int) -> RoundState | None:
    """The only state ``current`` may move to (None once PAID)."""
    return _NEXT[as_state(current)]


def transition(current: RoundState | int, requested: RoundState | int) -> Transition:
    """Check a requested move; raise ``IllegalTransition`` (FAILED_PRECONDITION) if not allowed."""
    current, requested = as_state(current), as_state(requested)
    if current is requested:
        return Transition.UNCHANGED
    allowed = _NEXT[current]
    if requested is not allowed:
        hint = f"the only next state is {allowed.name}" if allowed else "it is final"
        raise IllegalTransition(
            f"round is {current.name}: it cannot move to {requested.name} ({hint})",
            current=current.name,
            requested=requested.name,
        )
    return Transition.CHANGED


def require_state(current: RoundState | int, *allowed: RoundState, action: str) -> None:
    """Guard an action that needs the round in one of ``allowed`` (e.g. uploads need OPEN)."""
    current = as_state(current)
    if current not in allowed:
        wanted = " or ".join(s.name for s in allowed)
        raise FailedPrecondition(
            f"round is {current.name}: {action} needs it {wanted}",
            reason="ROUND_STATE",
            metadata={"current_state": current.name},
        )
