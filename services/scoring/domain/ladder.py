"""The parameter-free Ladder (Blum & Hardt, ICML 2015) that guards the public validation score.

While a round is open, each accepted upload is scored on the hidden validation rows. Showing the exact
score would let a participant probe the hidden targets by re-uploading perturbations and keeping
whatever scores best, climbing the board with noise. The Ladder shows a new score only when the
submission beats the currently displayed one by more than the noise of the comparison itself, and
then only to that precision:

* ``step = std(new_losses - leader_losses, ddof=1) / sqrt(n)``: one standard error of the mean
  per-row loss difference to the submission that set the displayed score (for the first submission,
  to zero losses, i.e. the standard error of its own mean loss), as in the authors' Ladder.jl;
* the displayed score changes only if ``mean(new_losses) < displayed - step`` (the paper compares
  with the displayed value R_{t-1});
* the new displayed score is the mean loss rounded to the nearest multiple of ``step`` (the
  paper's [x]_eta rounding), so it carries no more digits than the comparison could resolve. (The
  gateway may format it to the decimal place of ``step``; the value itself is already quantised.)

Losses are lower-is-better (per-row logloss). All state is in ``LadderState``, immutable: the service
stores it (the leader's loss vector as float64 bytes) and passes it back with the next upload.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidScoringInput

__all__ = ["LadderDecision", "LadderState", "ladder_submit"]


@dataclass(frozen=True)
class LadderState:
    """What the Ladder remembers for one model in one round.

    ``displayed`` is the public score (None before the first submission), ``step`` the precision it
    was rounded to, ``leader_losses`` the per-row losses of the submission that set it (read-only),
    ``submissions`` how many submissions were judged.
    """

    displayed: float | None = None
    step: float | None = None
    leader_losses: NDArray[np.float64] | None = field(default=None, repr=False)
    submissions: int = 0

    def __post_init__(self) -> None:
        if self.leader_losses is not None:
            losses = np.array(self.leader_losses, dtype=np.float64)
            losses.flags.writeable = False
            object.__setattr__(self, "leader_losses", losses)


@dataclass(frozen=True)
class LadderDecision:
    """The new state, whether the public score changed, and the exact private mean loss."""

    state: LadderState
    changed: bool
    mean_loss: float
    step: float


def _round_to_step(value: float, step: float) -> float:
    return round(value / step) * step if step > 0 else value


def ladder_submit(state: LadderState, losses: ArrayLike) -> LadderDecision:
    """Judge one submission's per-row validation losses against the current Ladder state."""
    new = np.asarray(losses, dtype=np.float64)
    if new.ndim != 1 or new.size < 2:
        raise InvalidScoringInput(
            f"losses must be a vector of at least 2 per-row losses, got shape {new.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(new))
    if bad.size:
        raise InvalidScoringInput(f"losses must be finite; row {int(bad[0])} is {new[bad[0]]}")
    leader = state.leader_losses
    if leader is not None and leader.shape != new.shape:
        raise InvalidScoringInput(
            f"losses cover {new.size} rows but the displayed score was set on {leader.size} rows"
        )
    differences = new if leader is None else new - leader
    step = float(np.std(differences, ddof=1)) / math.sqrt(new.size)
    if step == 0.0 and state.step is not None:
        # Identical per-row differences (e.g. the same file again) carry no noise estimate; keep the
        # previous precision rather than revealing the exact mean.
        step = state.step
    mean_loss = float(new.mean())
    judged = state.submissions + 1
    if state.displayed is None or mean_loss < state.displayed - step:
        new_state = LadderState(
            displayed=_round_to_step(mean_loss, step), step=step, leader_losses=new, submissions=judged
        )
        return LadderDecision(state=new_state, changed=True, mean_loss=mean_loss, step=step)
    kept = LadderState(displayed=state.displayed, step=state.step, leader_losses=leader, submissions=judged)
    return LadderDecision(state=kept, changed=False, mean_loss=mean_loss, step=step)
