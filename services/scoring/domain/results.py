"""What a scoring run computes from and what it stores: the inputs of a resolved round, and each
model's published record (opaque bytes to the use cases; the api layer writes and reads them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdquant.formats.dataset import Split
from services.scoring.domain.eras import BENCHMARK_LOGLOSS
from shared.rounds import RoundKey


def resolved_rows(splits: np.ndarray) -> np.ndarray:
    """The rows a resolved round is scored on: its live rows, and only those.

    Validation targets are what the public Ladder board is computed from while the round is open,
    so whatever leaks from them (probes, boosting against the board) must not turn into rank or
    satoshis: every resolved figure (each metric, per-era series, intervals, MMC, the meta model)
    and therefore the resolved board and payouts come from live rows alone.
    """
    return np.asarray(splits) == Split.LIVE


@dataclass(frozen=True)
class RoundInputs:
    key: RoundKey
    model_ids: list[str]
    participants: list[str]
    names: dict[str, str]
    versions: list[int]
    values: np.ndarray  # (n_models, n_rows) float32
    targets: np.ndarray  # (n_rows,)
    eras: np.ndarray  # (n_rows,) int
    stakes: dict[str, int]
    policy: int
    binary: bool
    eps: float
    resamples: int
    confidence: float
    logloss_benchmark: float = BENCHMARK_LOGLOSS  # the consistency rule's per-era logloss to beat


@dataclass(frozen=True)
class ScoredModel:
    """One model's results as stored: its keys, its sort values by metric, and its published record."""

    model_id: str
    participant_id: str
    sort: dict[str, float | None]  # metric -> overall mean (None where it does not apply or is not finite)
    record: bytes


@dataclass(frozen=True)
class ScoredRound:
    models: list[ScoredModel]
    meta_record: bytes
