"""Seeded synthetic tournament data shaped like Numerai's 2016 release.

Why synthetic: the platform needs realistic rounds for demos, tests and benchmarks without
shipping anyone's market data. Why this shape: 96,320 training rows x 21 features with a binary
target and a 36,072-row tournament set are the sizes of the original 2016 files, and the signal is
deliberately weak, as it was: predicting 0.5 everywhere scores logloss ln 2 ~ 0.6931 and a good
linear model only reaches about 0.690-0.692. A participant cannot tell noise from skill in one
era, which is why the platform scores over eras and checks consistency. The 12,024 live rows,
which alone decide the resolved board and payouts, are spread over six eras of 2,004 rows (the
size of a validation era), so per-era statistics and era-bootstrap intervals on live rows mean
something.

The generating model: raw features are correlated Gaussians (a seeded random mixing matrix); the
true logit is ``features @ w_era`` where ``w_era`` is a shared direction plus a per-era drift, so a
static model beats ln 2 in most eras but not all; binary targets are Bernoulli draws of the logit,
graded ones the mean of four such draws (values 0, .25, .5, .75, 1, mode at 0.5, as today's
targets). Ids are ``t`` + a zero-padded number drawn from a shuffled range, so neither the id nor
its numeric order reveals a row's split or era.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdquant.formats.dataset import Dataset, Split, TargetKind
from shared.errors import InvalidArgument

NUMERAI_2016_TRAINING_ROWS = 96_320
NUMERAI_2016_TOURNAMENT_ROWS = 36_072
NUMERAI_2016_FEATURES = 21


@dataclass(frozen=True)
class DatasetSpec:
    """Sizes and strength of a generated dataset; the defaults are the 2016 shape.

    ``signal`` is the standard deviation of the true logit; the best achievable logloss is about
    ``ln 2 - signal**2 / 8``, so 0.13 gives ~0.6910; a logistic model fitted on the training rows
    scores about 0.6904-0.6915 on validation over seeds 0-11 (live, six eras: 0.6908-0.6928, beating
    ln 2 in 4 to 6 of them).
    ``era_drift`` is the per-era perturbation of the weight vector relative to its norm.
    """

    n_training: int = NUMERAI_2016_TRAINING_ROWS
    n_validation: int = 24_048  # 12 eras x 2,004 rows
    n_live: int = NUMERAI_2016_TOURNAMENT_ROWS - 24_048  # 12,024 rows: 6 eras x 2,004 rows
    n_features: int = NUMERAI_2016_FEATURES
    n_training_eras: int = 120
    n_validation_eras: int = 12
    n_live_eras: int = 6
    signal: float = 0.13
    era_drift: float = 0.3
    target_kind: TargetKind = TargetKind.BINARY
    seed: int = 0

    def validate(self) -> None:
        """Refuse sizes that cannot make a round, naming the field."""
        for name in ("n_training", "n_validation", "n_live", "n_features"):
            if getattr(self, name) < 1:
                raise InvalidArgument(f"dataset spec: {name} must be >= 1, got {getattr(self, name)}")
        for rows, eras in (
            ("n_training", "n_training_eras"),
            ("n_validation", "n_validation_eras"),
            ("n_live", "n_live_eras"),
        ):
            if not 1 <= getattr(self, eras) <= getattr(self, rows):
                raise InvalidArgument(
                    f"dataset spec: {eras} must be between 1 and {rows} ({getattr(self, rows)}), "
                    f"got {getattr(self, eras)}"
                )
        if self.signal < 0 or self.era_drift < 0:
            raise InvalidArgument("dataset spec: signal and era_drift must be >= 0")


def tournament_eras(n_eras: int, n_validation: int, n_live: int) -> dict[str, int]:
    """Share ``n_eras`` between validation and live in proportion to their rows (eras of one size).

    Live rows alone decide the resolved board, so they get several eras too (e.g. 18 eras over
    24,048 + 12,024 rows: 12 validation and 6 live eras); each split gets at least one.
    """
    live = max(1, round(n_eras * n_live / (n_validation + n_live)))
    return {"n_validation_eras": max(1, n_eras - live), "n_live_eras": live}


def make_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unique ids ``t000123`` in shuffled order (so ids don't leak split or era)."""
    width = max(6, len(str(n - 1)))
    numbers = rng.permutation(n)
    return np.char.add("t", np.char.zfill(numbers.astype(str), width))


def _era_labels(n_rows: int, n_eras: int, first_era: int) -> np.ndarray:
    """Era numbers for rows in order, sizes as equal as possible (earlier eras get the extra row)."""
    sizes = np.full(n_eras, n_rows // n_eras)
    sizes[: n_rows % n_eras] += 1
    return np.repeat(np.arange(first_era, first_era + n_eras, dtype=np.int32), sizes)


def generate(spec: DatasetSpec | None = None) -> Dataset:
    """Generate a round's full dataset (raw features, all targets known) reproducibly from ``spec.seed``."""
    spec = spec or DatasetSpec()
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    n = spec.n_training + spec.n_validation + spec.n_live
    f = spec.n_features

    split = np.concatenate(
        [
            np.full(spec.n_training, Split.TRAINING, dtype=np.int8),
            np.full(spec.n_validation, Split.VALIDATION, dtype=np.int8),
            np.full(spec.n_live, Split.LIVE, dtype=np.int8),
        ]
    )
    eras = np.concatenate(
        [
            _era_labels(spec.n_training, spec.n_training_eras, 1),
            _era_labels(spec.n_validation, spec.n_validation_eras, 1 + spec.n_training_eras),
            _era_labels(spec.n_live, spec.n_live_eras, 1 + spec.n_training_eras + spec.n_validation_eras),
        ]
    )

    # Correlated features: a random mixing of independent normals, columns rescaled to unit variance.
    mixing = rng.standard_normal((f, f)) + np.eye(f) * 2.0
    mixing /= np.linalg.norm(mixing, axis=0, keepdims=True)
    features = rng.standard_normal((n, f)) @ mixing
    covariance = mixing.T @ mixing

    direction = rng.standard_normal(f)
    n_eras = int(eras.max())
    drift = rng.standard_normal((n_eras, f)) * (spec.era_drift * np.linalg.norm(direction) / np.sqrt(f))
    weights = direction[None, :] + drift  # (n_eras, f), row e-1 for era e
    base_sd = np.sqrt(direction @ covariance @ direction)
    weights *= spec.signal / base_sd if base_sd > 0 else 0.0
    logits = np.einsum("ij,ij->i", features, weights[eras - 1])
    p = 1.0 / (1.0 + np.exp(-logits))
    if spec.target_kind is TargetKind.GRADED:
        targets = rng.binomial(4, p) / 4.0
    else:
        targets = (rng.random(n) < p).astype(np.float64)

    return Dataset(
        ids=make_ids(n, rng),
        eras=eras,
        split=split,
        features=features.astype(np.float32),
        targets=targets.astype(np.float32),
        target_kind=spec.target_kind,
    )
