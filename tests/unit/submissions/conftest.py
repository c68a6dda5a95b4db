"""Fixtures of the submissions domain tests: small generated rounds and a tiny logistic model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from services.submissions.domain.dataset import Dataset, DatasetSpec, generate

Model = Callable[[np.ndarray], np.ndarray]


def _fit_logistic(features: np.ndarray, targets: np.ndarray, iterations: int = 8) -> Model:
    """Newton's method on the logistic log-likelihood with an intercept (tiny ridge for safety)."""
    design = np.hstack([features.astype(np.float64), np.ones((len(features), 1))])
    weights = np.zeros(design.shape[1])
    ridge = 1e-6 * np.eye(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-design @ weights))
        gradient = design.T @ (p - targets)
        hessian = (design * (p * (1 - p))[:, None]).T @ design + ridge
        weights -= np.linalg.solve(hessian, gradient)

    def predict(x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(x.astype(np.float64) @ weights[:-1] + weights[-1])))

    return predict


@pytest.fixture(scope="session")
def fit_logistic() -> Callable[[np.ndarray, np.ndarray], Model]:
    return _fit_logistic


@pytest.fixture(scope="session")
def small_spec() -> DatasetSpec:
    return DatasetSpec(
        n_training=2_000,
        n_validation=1_200,
        n_live=600,
        n_features=6,
        n_training_eras=10,
        n_validation_eras=4,
        n_live_eras=4,
        seed=7,
    )


@pytest.fixture(scope="session")
def small_round(small_spec: DatasetSpec) -> Dataset:
    return generate(small_spec)


@pytest.fixture(scope="session")
def full_round() -> Dataset:
    """The 2016 shape at full size (96,320 + 36,072 rows); ~0.2 s to generate."""
    return generate(DatasetSpec(seed=0))
