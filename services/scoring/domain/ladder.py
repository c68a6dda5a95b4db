"""The parameter-free Ladder (Blum & Hardt, ICML 2015) that guards the public validation score.

While a round is open, each accepted upload is scored on the hidden validation rows. Showing the exact
score would let a participant probe the hidden targets by re-uploading perturbations and keeping
whatever scores best, climbing the board with noise. The Ladder shows a new score only when the
submission beats the current leader by more than the noise of the comparison itself:

* ``step = std(new_losses - leader_losses, ddof=1) / sqrt(n)``: one standard error of the mean
  per-row loss difference to the submission that set the displayed score (for the first submission,
  to zero losses, i.e. the standard error of its own mean loss), as in the authors' Ladder.jl;
* the displayed score changes only if ``mean(new_losses) < mean(leader_losses) - step``;
* the new displayed score is the mean loss rounded to a fixed number of decimals
  (``DISPLAY_DECIMALS``).

What stays private, and why: the step is a standard deviation of per-row losses, so it depends on the
hidden targets (an upload that is 0.5 everywhere but a few rows reveals those rows' targets through
it); it is never shown. The displayed value is rounded to a fixed grid rather than to the step, so its
digits do not carry the step either. The comparison is with the leader's exact mean, not with the
rounded display, so the rounding offset cannot turn a one-row probe into a signal: a probe that
changes one row moves the mean by exactly one step and never beats it.

One state per participant and round (not per model): all of a participant's models share one leader,
so a fresh model does not start a fresh Ladder (which would give every query a new baseline).

Losses are lower-is-better (per-row logloss). All state is in ``LadderState``, immutable: the service
stores it (the leader's loss vector as float64 bytes) and passes it back with the next upload.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidScoringInput

__all__ = ["DISPLAY_DECIMALS", "LadderDecision", "LadderState", "ladder_submit"]

DISPLAY_DECIMALS = 4
"""Decimals of a displayed score: a fixed grid, independent of the hidden targets."""


@dataclass(frozen=True)
class LadderState:
    """What the Ladder remembers for one participant in one round (all private but ``displayed``).

    ``displayed`` is the public score (None before the first submission); ``leader_mean`` and
    ``leader_losses`` are the exact mean and per-row losses of the submission that set it (read-only);
    ``step`` the standard error of the last comparison that changed it; ``submissions`` how many
    submissions were judged.
    """

    displayed: float | None = None
    leader_mean: float | None = None
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
    """The new state, whether the public score changed, and the private mean loss and step."""

    state: LadderState
    changed: bool
    mean_loss: float
    step: float


def ladder_submit(state: LadderState, losses: ArrayLike, *, decimals: int = DISPLAY_DECIMALS) -> LadderDecision:
    """Judge one submission's per-row validation losses against the current Ladder state."""
    new = np.asarray(losses, dtype=np.float64)
    if new.ndim != 1 or new.size < 2:
        raise InvalidScoringInput(f"losses must be a vector of at least 2 per-row losses, got shape {new.shape}")
    bad = np.flatnonzero(~np.isfinite(new))
    if bad.size:
        raise InvalidScoringInput(f"losses must be finite; row {int(bad[0])} is {new[bad[0]]}")
    leader = state.leader_losses
    if leader is not None and leader.shape != new.shape:
        raise InvalidScoringInput(f"losses cover {new.size} rows but the displayed score was set on {leader.size} rows")
    differences = new if leader is None else new - leader
    step = float(np.std(differences, ddof=1)) / math.sqrt(new.size)
    if step == 0.0 and state.step is not None:
        # Identical per-row differences (e.g. the same file again) carry no noise estimate; keep the
        # previous precision rather than accepting any change at all.
        step = state.step
    mean_loss = float(new.mean())
    judged = state.submissions + 1
    if state.leader_mean is None or mean_loss < state.leader_mean - step:
        new_state = LadderState(
            displayed=round(mean_loss, decimals),
            leader_mean=mean_loss,
            step=step,
            leader_losses=new,
            submissions=judged,
        )
        return LadderDecision(state=new_state, changed=True, mean_loss=mean_loss, step=step)
    kept = LadderState(
        displayed=state.displayed,
        leader_mean=state.leader_mean,
        step=state.step,
        leader_losses=leader,
        submissions=judged,
    )
    return LadderDecision(state=kept, changed=False, mean_loss=mean_loss, step=step)
