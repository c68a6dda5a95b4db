"""The parameter-free Ladder: its rules, its state, and what it does to probing participants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from services.scoring.domain import InvalidScoringInput, LadderState, ladder_submit, per_row_logloss
from services.scoring.domain.ladder import DISPLAY_DECIMALS

HIDDEN_ROWS = 12_000  # about a third of a 36,072-row tournament set are validation rows


def _hidden_validation(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Binary targets with a weak signal and an honest base model, as in the 2016 data."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=HIDDEN_ROWS)
    targets = (rng.random(HIDDEN_ROWS) < 1 / (1 + np.exp(-0.1 * x))).astype(np.float64)
    return targets, 1 / (1 + np.exp(-0.08 * x))


def test_first_submission_is_shown_on_the_fixed_grid_and_its_step_stays_private() -> None:
    losses = np.array([0.70, 0.68, 0.71, 0.69, 0.66, 0.72])
    decision = ladder_submit(LadderState(), losses)
    step = np.std(losses, ddof=1) / math.sqrt(6)
    assert decision.changed and decision.step == pytest.approx(step)
    assert decision.state.displayed == round(losses.mean(), DISPLAY_DECIMALS)
    assert decision.mean_loss == pytest.approx(losses.mean())
    assert decision.state.leader_mean == pytest.approx(losses.mean())
    assert decision.state.submissions == 1


def test_a_probe_of_one_row_never_changes_the_displayed_score() -> None:
    """Changing one row moves the mean by exactly one step, so it never beats the leader by more.

    Compared with the rounded display instead, a probe whose row guessed right would change the score
    whenever the display happened to be rounded up: one hidden target per upload.
    """
    targets, _ = _hidden_validation(9)
    state = ladder_submit(LadderState(), per_row_logloss(np.full(HIDDEN_ROWS, 0.5), targets)).state
    for row in range(50):
        for value in (0.001, 0.999):
            probe = np.full(HIDDEN_ROWS, 0.5)
            probe[row] = value
            decision = ladder_submit(state, per_row_logloss(probe, targets))
            assert not decision.changed
            state = decision.state


def test_score_changes_only_beyond_one_standard_error_of_the_differences() -> None:
    targets, base = _hidden_validation(1)
    first = ladder_submit(LadderState(), per_row_logloss(base, targets)).state
    tiny_gain = per_row_logloss(base, targets) - 1e-7  # better, but by far less than the noise
    noisy = tiny_gain + np.random.default_rng(2).normal(0, 0.01, HIDDEN_ROWS)
    decision = ladder_submit(first, noisy)
    assert not decision.changed and decision.state.displayed == first.displayed
    assert decision.state.submissions == 2
    noise = np.random.default_rng(3).normal(0, 0.01, HIDDEN_ROWS)
    clear_gain = per_row_logloss(base, targets) - 0.002 + noise
    decision = ladder_submit(decision.state, clear_gain)
    assert decision.changed
    assert decision.state.displayed < first.displayed - decision.step / 2
    assert decision.state.displayed == round(decision.state.displayed, DISPLAY_DECIMALS)


def test_resubmitting_the_leader_changes_nothing() -> None:
    targets, base = _hidden_validation(4)
    losses = per_row_logloss(base, targets)
    state = ladder_submit(LadderState(), losses).state
    again = ladder_submit(state, losses)
    assert not again.changed and again.state.displayed == state.displayed and again.step == state.step


def test_state_is_immutable_and_independent_of_the_callers_array() -> None:
    losses = np.linspace(0.6, 0.8, 50)
    state = ladder_submit(LadderState(), losses).state
    losses[:] = 0.0
    assert state.leader_losses is not None and state.leader_losses[0] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="read-only"):
        state.leader_losses[0] = 1.0


def test_loss_vectors_of_another_size_or_with_nan_are_refused() -> None:
    state = ladder_submit(LadderState(), np.linspace(0.6, 0.8, 50)).state
    with pytest.raises(InvalidScoringInput, match="cover 49 rows but the displayed score was set on 50"):
        ladder_submit(state, np.linspace(0.6, 0.8, 49))
    with pytest.raises(InvalidScoringInput, match="row 3 is nan"):
        ladder_submit(state, np.where(np.arange(50) == 3, np.nan, 0.7))


def test_keeping_the_best_of_200_perturbations_climbs_the_raw_board_but_not_the_ladder() -> None:
    """A participant re-uploads 200 random perturbations of one model and keeps the best public score.

    Both boards are computed on the same hidden validation rows. The raw board (exact mean loss)
    rewards the probing: its best-of-200 is better than the honest model by more than one standard
    error of a perturbation's difference, an improvement that exists only on these rows. The Ladder's
    displayed score moves by at most one step (the precision it showed the honest model with).
    Over 100 seeds of this set-up the raw climb was always >= 1.44 standard errors and the Ladder's
    move <= 0.69 steps, so the bounds below are not tuned to the seed.
    """
    targets, base = _hidden_validation(5)
    rng = np.random.default_rng(6)
    base_losses = per_row_logloss(base, targets)
    decision = ladder_submit(LadderState(), base_losses)
    state, first_displayed, first_step = decision.state, decision.state.displayed, decision.step
    raw_best = base_losses.mean()
    difference_se = []
    for _ in range(200):
        probe = np.clip(base + rng.normal(0.0, 0.001, HIDDEN_ROWS), 1e-6, 1 - 1e-6)
        losses = per_row_logloss(probe, targets)
        raw_best = min(raw_best, losses.mean())
        difference_se.append(np.std(losses - base_losses, ddof=1) / math.sqrt(HIDDEN_ROWS))
        state = ladder_submit(state, losses).state
    raw_climb = base_losses.mean() - raw_best
    ladder_climb = first_displayed - state.displayed
    assert raw_climb > float(np.median(difference_se))
    assert ladder_climb <= first_step
    assert state.submissions == 201


def test_the_boosting_attack_of_blum_and_hardt_is_contained() -> None:
    """The paper's attack: keep the random perturbations that look better, then combine them.

    On the raw board 200 probes leak enough about the hidden targets for the combined submission to
    gain more than a full step; through the Ladder the participant learns almost nothing (a probe is
    kept only when the displayed score changed), and the combined submission gains less. Over 100
    seeds of this set-up the raw gain was always >= 1.28 steps and above the Ladder's, which was
    <= 1.15 steps (<= 0.97 in 95 of them).
    """
    targets, base = _hidden_validation(7)
    rng = np.random.default_rng(8)
    base_losses = per_row_logloss(base, targets)
    decision = ladder_submit(LadderState(), base_losses)
    state, first_displayed, first_step = decision.state, decision.state.displayed, decision.step
    kept_raw, kept_ladder = [], []
    for _ in range(200):
        direction = rng.choice([-1.0, 1.0], HIDDEN_ROWS)
        losses = per_row_logloss(base + 0.005 * direction, targets)
        if losses.mean() < base_losses.mean():
            kept_raw.append(direction)
        decision = ladder_submit(state, losses)
        if decision.changed:
            kept_ladder.append(direction)
        state = decision.state

    def combined(kept: list[np.ndarray]) -> np.ndarray:
        return base + 0.005 * np.sign(np.sum(kept, axis=0)) if kept else base

    raw_gain = base_losses.mean() - per_row_logloss(combined(kept_raw), targets).mean()
    final = ladder_submit(state, per_row_logloss(combined(kept_ladder), targets)).state
    ladder_gain = first_displayed - final.displayed
    assert raw_gain > first_step
    assert ladder_gain < raw_gain
    assert ladder_gain <= 1.5 * first_step
    assert len(kept_ladder) < len(kept_raw) / 10
