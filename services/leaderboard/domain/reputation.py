"""Reputation: a model's weighted average of one metric over the last N published rounds.

Like Numerai's reputation, it rewards a model that is good round after round rather than once.
Weights are given per position in the window, most recent round first, and come from a scheme
named in settings (``CROWDQUANT_LEADERBOARD_REPUTATION_WEIGHTS``):

- ``linear`` (default): N, N-1, ..., 1 — recent rounds count most, older ones fade out evenly;
- ``equal``: 1, 1, ..., 1 — a plain mean over the window;
- ``halving``: 1, 1/2, 1/4, ... — each round counts half as much as the next newer one;
- an explicit list such as ``0.4,0.3,0.2,0.1`` (most recent first; its length bounds N).

A model's reputation averages only the rounds of the window in which it has a score, with those
rounds' weights renormalised to sum to 1: a model that skipped a round is neither penalised as if
it scored 0 nor rewarded. Example, linear weights with N = 3 (3/6, 2/6, 1/6) and scores 0.02
(newest), missing, 0.05: (3 * 0.02 + 1 * 0.05) / (3 + 1) = 0.0275 over 2 rounds counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.leaderboard.domain.errors import BadWeights

SCHEMES = ("linear", "equal", "halving")
MAX_WINDOW = 100


@dataclass(frozen=True)
class WeightScheme:
    """How much each position of the window counts (before renormalisation)."""

    kind: str
    explicit: tuple[float, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> WeightScheme:
        text = spec.strip().lower()
        if text in SCHEMES:
            return cls(text)
        try:
            values = tuple(float(part) for part in text.split(","))
        except ValueError:
            raise BadWeights(
                f"reputation weights: expected one of {', '.join(SCHEMES)} or a comma-separated "
                f"list of numbers, most recent round first (got {spec!r})"
            ) from None
        if not values or any(not math.isfinite(v) or v < 0 for v in values) or sum(values) <= 0:
            raise BadWeights(f"reputation weights: numbers must be finite, >= 0 and not all 0 (got {spec!r})")
        return cls("explicit", values)

    @property
    def max_window(self) -> int:
        return len(self.explicit) if self.kind == "explicit" else MAX_WINDOW

    def weights(self, window: int) -> tuple[float, ...]:
        """Weights of positions 0..window-1 (most recent first), normalised to sum to 1."""
        if not 1 <= window <= self.max_window:
            raise BadWeights(
                f"window_rounds must be between 1 and {self.max_window} (got {window})",
                metadata={"field": "window_rounds"},
            )
        if self.kind == "linear":
            raw = [float(window - i) for i in range(window)]
        elif self.kind == "equal":
            raw = [1.0] * window
        elif self.kind == "halving":
            raw = [0.5**i for i in range(window)]
        else:
            raw = list(self.explicit[:window])
        total = sum(raw)
        if total <= 0:
            raise BadWeights(
                f"reputation weights of the first {window} rounds are all 0", metadata={"field": "window_rounds"}
            )
        return tuple(w / total for w in raw)


def weighted_reputation(values: Sequence[float | None], weights: Sequence[float]) -> tuple[float, int]:
    """(reputation, rounds counted) of one model: ``values[i]`` is its score in window position i
    (None or NaN = no score there). NaN and 0 rounds when it has no score in the window."""
    num = den = 0.0
    counted = 0
    for value, weight in zip(values, weights, strict=False):
        if value is None or math.isnan(value):
            continue
        num += weight * value
        den += weight
        counted += 1
    if counted == 0 or den <= 0:
        return math.nan, 0
    return num / den, counted


def reputations(rounds: Sequence[Mapping[str, float]], weights: Sequence[float]) -> dict[str, tuple[float, int]]:
    """Reputation of every model appearing in ``rounds`` (most recent first, model id -> score)."""
    models = {model_id for scores in rounds for model_id in scores}
    return {m: weighted_reputation([scores.get(m) for scores in rounds], weights) for m in models}
