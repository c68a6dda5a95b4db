"""Concordance: per-cluster KS of validation vs live predictions, and the seeded k-means behind it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from services.submissions.domain.concordance import assign_clusters, check_concordance, fit_clusters
from services.submissions.domain.dataset import Dataset, Split
from services.submissions.domain.ks import ks_statistic
from services.submissions.domain.obfuscation import obfuscate_dataset
from shared.errors import InvalidArgument


def test_kmeans_finds_separated_blobs_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [5, 5], [0, 5], [5, 0], [10, 10]], dtype=float)
    points = np.concatenate([c + rng.normal(0, 0.3, (200, 2)) for c in centres])
    centroids = fit_clusters(points, 5, seed=1)
    assert np.allclose(np.sort(centroids, axis=0), np.sort(centres, axis=0), atol=0.1)
    labels = assign_clusters(points, centroids)
    assert labels.dtype == np.int8
    assert all(len(np.unique(labels[i * 200 : (i + 1) * 200])) == 1 for i in range(5))
    assert np.array_equal(fit_clusters(points, 5, seed=1), centroids)


def test_one_model_is_concordant_and_a_split_dependent_one_is_not(small_round: Dataset) -> None:
    published, _ = obfuscate_dataset(small_round, b"k" * 32)
    tournament = published.tournament()
    clusters = assign_clusters(tournament.features, fit_clusters(published.features, 5))
    model = 1 / (1 + np.exp(-(tournament.features - 0.5) @ np.linspace(-1, 1, published.n_features)))
    result = check_concordance(model, clusters, tournament.split)
    assert result.concordant and result.mean_ks < 0.12 and len(result.cluster_ks) == 5
    assert result.reason.startswith("concordant: mean KS")
    cheat = np.where(tournament.split == Split.LIVE, 0.5 + 0.1 * np.random.default_rng(0).random(len(model)), model)
    bad = check_concordance(cheat, clusters, tournament.split, threshold=0.12)
    assert not bad.concordant and bad.mean_ks >= 0.12 and bad.reason.startswith("not concordant")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(12, 300), k=st.integers(1, 5))
def test_cluster_statistics_match_scipy(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    predictions = np.round(rng.uniform(0, 1, n), 2)
    clusters = rng.integers(0, k, n).astype(np.int8)
    split = rng.choice([Split.VALIDATION, Split.LIVE], n).astype(np.int8)
    result = check_concordance(predictions, clusters, split, k=k)
    expected = []
    for c in range(k):
        a = predictions[(clusters == c) & (split == Split.VALIDATION)]
        b = predictions[(clusters == c) & (split == Split.LIVE)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected.append(ks_2samp(a, b, method="exact").statistic if a.size and b.size else np.nan)
    assert np.allclose(result.cluster_ks, expected, equal_nan=True, rtol=0, atol=1e-12)


def test_clusters_without_both_splits_are_skipped() -> None:
    predictions = np.array([0.1, 0.2, 0.3, 0.4, 0.9])
    clusters = np.array([0, 0, 1, 1, 2], dtype=np.int8)
    split = np.array([Split.VALIDATION, Split.LIVE, Split.VALIDATION, Split.LIVE, Split.LIVE], dtype=np.int8)
    result = check_concordance(predictions, clusters, split)
    assert np.isnan(result.cluster_ks[2]) and result.mean_ks == pytest.approx(1.0)
    only_live = check_concordance(predictions, clusters, np.full(5, Split.LIVE, dtype=np.int8))
    assert not only_live.concordant and "no cluster" in only_live.reason


def test_ks_statistic_of_unequal_samples() -> None:
    assert ks_statistic(np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.2, 0.3, 0.4])) == 0.25
    with pytest.raises(InvalidArgument, match="non-empty"):
        ks_statistic(np.array([]), np.array([1.0]))


def test_bad_inputs() -> None:
    with pytest.raises(InvalidArgument, match="at least k=5 rows"):
        fit_clusters(np.zeros((3, 2)), 5)
    with pytest.raises(InvalidArgument, match="aligned"):
        check_concordance(np.zeros(3), np.zeros(2, dtype=np.int8), np.zeros(3))
