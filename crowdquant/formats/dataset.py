"""The rows of one round as the client and the services hold them: ids, eras, splits, features, targets.

Round files (``crowdquant.formats.round_files``) read and write these; the services' generator
(``services.submissions.domain.dataset``) makes them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

import numpy as np

from shared.errors import InvalidArgument


class Split(enum.IntEnum):
    """Which part of a round a row belongs to (0 is left unused, as proto enums reserve it)."""

    TRAINING = 1  # targets released with the data
    VALIDATION = 2  # targets hidden (committed to at open), score the public leaderboard
    LIVE = 3  # targets resolve after the round closes, decide payouts


class TargetKind(enum.IntEnum):
    """Binary targets as in 2016, or graded in [0, 1] as Numerai uses today."""

    BINARY = 1
    GRADED = 2


@dataclass(frozen=True, eq=False)
class Dataset:
    """Rows of one round in row order: training rows, then validation, then live, by era.

    ``targets`` is NaN where the holder does not know a target (e.g. hidden validation targets in
    a participant's copy). ``features`` may be raw or obfuscated; the generator returns raw ones.
    """

    ids: np.ndarray  # str, unique
    eras: np.ndarray  # int32, 1-based, increasing through training -> validation -> live
    split: np.ndarray  # int8 values of Split
    features: np.ndarray  # float32 (n_rows, n_features)
    targets: np.ndarray  # float32, NaN = unknown
    target_kind: TargetKind = TargetKind.BINARY

    def __post_init__(self) -> None:
        n = len(self.ids)
        if not (len(self.eras) == len(self.split) == len(self.features) == len(self.targets) == n):
            raise InvalidArgument(
                f"dataset columns differ in length: ids {n}, eras {len(self.eras)}, split {len(self.split)}, "
                f"features {len(self.features)}, targets {len(self.targets)}"
            )

    @property
    def n_rows(self) -> int:
        return len(self.ids)

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    def mask(self, *splits: Split) -> np.ndarray:
        """Boolean row mask of the given splits."""
        return np.isin(self.split, np.asarray([int(s) for s in splits], dtype=self.split.dtype))

    def select(self, mask: np.ndarray) -> Dataset:
        """The rows under a boolean mask, keeping row order."""
        return Dataset(
            ids=self.ids[mask],
            eras=self.eras[mask],
            split=self.split[mask],
            features=self.features[mask],
            targets=self.targets[mask],
            target_kind=self.target_kind,
        )

    def training(self) -> Dataset:
        return self.select(self.mask(Split.TRAINING))

    def tournament(self) -> Dataset:
        """Validation then live rows: the rows every upload must predict, in the round's row order."""
        return self.select(self.mask(Split.VALIDATION, Split.LIVE))

    def with_features(self, features: np.ndarray) -> Dataset:
        """The same rows with other features (e.g. the obfuscated ones that get published)."""
        if features.shape != self.features.shape:
            raise InvalidArgument(f"features shape {features.shape} != dataset shape {self.features.shape}")
        return replace(self, features=np.asarray(features, dtype=np.float32))

    def with_hidden_targets(self) -> Dataset:
        """The participant's view: only training targets are known, the others are NaN."""
        targets = self.targets.copy()
        targets[~self.mask(Split.TRAINING)] = np.nan
        return replace(self, targets=targets)
