"""The batch state machine: only the documented moves, and errors that say where the batch is."""

from __future__ import annotations

import itertools

import pytest

from services.payouts.domain.state import TERMINAL, TRANSITIONS, BatchState, require_state, transition
from shared.errors import FailedPrecondition

LEGAL = {
    ("PLANNED", "SIGNED"),
    ("PLANNED", "FAILED"),
    ("SIGNED", "BROADCAST"),
    ("SIGNED", "FAILED"),
    ("BROADCAST", "CONFIRMED"),
    ("BROADCAST", "FAILED"),
    ("FAILED", "VOIDED"),
}


@pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
def test_legal_transitions(current: str, target: str) -> None:
    assert transition(current, target) is BatchState(target)


@pytest.mark.parametrize(
    ("current", "target"),
    [pair for pair in itertools.product([s.value for s in BatchState], repeat=2) if pair not in LEGAL],
)
def test_every_other_transition_is_refused_naming_the_current_state(current: str, target: str) -> None:
    with pytest.raises(FailedPrecondition) as err:
        transition(current, target, batch_id="b-7")
    assert err.value.reason == "BATCH_STATE"
    assert f"batch b-7 is {current}" in err.value.message
    assert err.value.metadata == {"state": current, "target": target, "batch": "b-7"}


def test_happy_path_and_failure_path() -> None:
    state = BatchState.PLANNED
    for nxt in ("SIGNED", "BROADCAST", "CONFIRMED"):
        state = transition(state, nxt)
    assert state in TERMINAL
    assert transition(transition(BatchState.SIGNED, "FAILED"), "VOIDED") is BatchState.VOIDED
    assert TERMINAL == {BatchState.CONFIRMED, BatchState.VOIDED}
    assert set(TRANSITIONS) == set(BatchState)


def test_confirmed_batch_explains_it_is_final() -> None:
    with pytest.raises(FailedPrecondition, match=r"CONFIRMED.*none \(final state\)"):
        transition("CONFIRMED", "FAILED")


def test_unknown_state_name_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        transition("PAID", "SIGNED")


def test_require_state_guards_actions() -> None:
    require_state("BROADCAST", [BatchState.BROADCAST], action="bump the fee")
    with pytest.raises(FailedPrecondition, match="cannot bump the fee: batch b-1 is SIGNED, and that needs BROADCAST"):
        require_state("SIGNED", [BatchState.BROADCAST], action="bump the fee", batch_id="b-1")
