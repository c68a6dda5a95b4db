"""The round state machine."""

from __future__ import annotations

import itertools

import pytest

from services.submissions.domain.errors import IllegalTransition
from services.submissions.domain.state import RoundState, Transition, next_state, require_state, transition
from shared.errors import FailedPrecondition, InvalidArgument

ORDER = [RoundState.OPEN, RoundState.CLOSED, RoundState.RESOLVED, RoundState.SCORED, RoundState.PAID]


def test_each_state_moves_one_step_forward() -> None:
    for current, following in itertools.pairwise(ORDER):
        assert transition(current, following) is Transition.CHANGED
        assert next_state(current) is following
    assert next_state(RoundState.PAID) is None


@pytest.mark.parametrize("state", ORDER)
def test_same_state_is_reported_unchanged(state: RoundState) -> None:
    assert transition(state, state) is Transition.UNCHANGED
    assert transition(int(state), int(state)) is Transition.UNCHANGED


@pytest.mark.parametrize(
    ("current", "requested"),
    [(a, b) for i, a in enumerate(ORDER) for j, b in enumerate(ORDER) if j != i and j != i + 1],
)
def test_other_moves_are_failed_precondition_naming_the_current_state(
    current: RoundState, requested: RoundState
) -> None:
    with pytest.raises(IllegalTransition) as info:
        transition(current, requested)
    error = info.value
    assert isinstance(error, FailedPrecondition)
    assert f"round is {current.name}" in error.message and requested.name in error.message
    assert error.metadata == {"current_state": current.name, "requested_state": requested.name}


def test_unspecified_or_unknown_states_are_invalid() -> None:
    with pytest.raises(InvalidArgument, match="unknown round state 0"):
        transition(RoundState.OPEN, 0)
    with pytest.raises(InvalidArgument, match="unknown round state 9"):
        next_state(9)


def test_require_state_guards_actions() -> None:
    require_state(RoundState.OPEN, RoundState.OPEN, action="uploading")
    with pytest.raises(FailedPrecondition, match="round is CLOSED: uploading needs it OPEN"):
        require_state(RoundState.CLOSED, RoundState.OPEN, action="uploading")
