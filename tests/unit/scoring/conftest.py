"""Builders shared by the scoring unit tests: small random rounds with every kind of tie.

Exposed as session fixtures returning the builder functions (the test directory is not a package, and
pytest runs with --import-mode=importlib, so tests cannot import a sibling module).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from numerai_tools.scoring import correlation_contribution, numerai_corr


@dataclass(frozen=True)
class Round:
    """A small synthetic round: predictions (models x rows, float32), targets, meta model, eras, ids."""

    predictions: np.ndarray
    targets: np.ndarray
    meta: np.ndarray
    eras: np.ndarray
    ids: list[str]


def make_round(
    seed: int,
    *,
    n_models: int = 8,
    n_rows: int = 1200,
    n_eras: int = 6,
    graded: bool = True,
    missing: bool = False,
    shuffled_eras: bool = False,
) -> Round:
    """Predictions with every kind of tie numerai-tools must handle, and a signal so CORR is not ~0.

    Model 0 is continuous, 1 is binned to 5 levels, 2 has a long run of identical values, 3 is
    constant on half the rows, the others are noisy copies of the signal; with ``missing`` two models
    lose up to 15% of their ids (NaN).
    """
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n_rows)
    if graded:
        targets = np.clip(np.round((signal + rng.normal(size=n_rows)) / 1.5 * 2 + 2), 0, 4) / 4
    else:
        targets = (signal + rng.normal(size=n_rows) > 0).astype(np.float64)
    preds = np.empty((n_models, n_rows), dtype=np.float32)
    for i in range(n_models):
        preds[i] = 1 / (1 + np.exp(-(0.3 * signal + rng.normal(size=n_rows))))
    preds[0] = rng.random(n_rows)
    preds[1] = np.round(preds[1] * 4) / 4
    preds[2, : n_rows // 3] = 0.5
    preds[3, rng.random(n_rows) < 0.5] = 0.25
    if missing:
        for i in (4, 6):
            if i < n_models:
                preds[i, rng.random(n_rows) < 0.15] = np.nan
    meta = np.nanmean(preds, axis=0).astype(np.float64) + 0.01 * rng.normal(size=n_rows)
    era_labels = np.repeat(np.arange(100, 100 + n_eras), -(-n_rows // n_eras))[:n_rows]
    if shuffled_eras:
        era_labels = rng.permutation(era_labels)
    ids = [f"id{k:06d}" for k in rng.permutation(n_rows)]
    return Round(preds, targets, meta, era_labels, ids)


def reference_corr_mmc(
    predictions: np.ndarray, targets: np.ndarray, meta: np.ndarray, ids: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """numerai-tools' numerai_corr and correlation_contribution, one submission at a time.

    Inputs are built the way numerai-tools needs them: named Series and DataFrames indexed by id (it
    sorts the index itself). One column at a time, so NaNs are dropped pairwise as in our system;
    with several columns numerai-tools would drop a row for all of them.
    """
    index = pd.Index(ids, name="id")
    target = pd.Series(targets, index=index, name="target")
    meta_model = pd.Series(meta, index=index, name="meta_model")
    corr, mmc = [], []
    for i, row in enumerate(predictions):
        frame = pd.DataFrame({f"model_{i}": row.astype(np.float64)}, index=index)
        corr.append(float(numerai_corr(frame, target).iloc[0]))
        mmc.append(float(correlation_contribution(frame, meta_model, target).iloc[0]))
    return np.array(corr), np.array(mmc)


@pytest.fixture(scope="session")
def build_round() -> Callable[..., Round]:
    return make_round


@pytest.fixture(scope="session")
def numerai_reference() -> Callable[..., tuple[np.ndarray, np.ndarray]]:
    return reference_corr_mmc
