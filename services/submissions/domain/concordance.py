"""Concordance, the 2017 rule: do the validation and live predictions look like one model?

Why: a participant could tune predictions on the validation rows (which score the public
leaderboard) and send something else, or noise, on the live rows (which decide payouts). Rows
that look alike should get alike predictions whichever split they are in, so Numerai clustered the
rows by their features (MiniBatchKMeans, 5 clusters, seeded) and, per cluster, compared the
distributions of the predictions on the splits with the KS statistic; concordant if the mean over
clusters is below 0.12. We compare validation with live (there is no separate test split here).

Clusters are fitted once per round on the published (obfuscated) features with a small seeded
Lloyd's k-means in numpy (k-means++ start) on a seeded sample of up to 20,000 rows (as
MiniBatchKMeans learned from samples), then every row is assigned to its nearest centre and the
labels are stored with the round, so every upload of the round uses the same clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdquant.formats.dataset import Split
from shared.errors import InvalidArgument

from .ks import ks_statistic

DEFAULT_CLUSTERS = 5
DEFAULT_SEED = 1337  # the random_state submission-criteria used
DEFAULT_THRESHOLD = 0.12
FIT_SAMPLE_ROWS = 20_000


def _squared_distances(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    # einsum rather than BLAS: a (n, f) x (f, k) product is tiny, and BLAS thread pools were
    # pathologically slow on a busy 2-core host.
    return (
        np.einsum("ij,ij->i", points, points)[:, None]
        - 2.0 * np.einsum("ij,kj->ik", points, centroids)
        + np.einsum("ij,ij->i", centroids, centroids)[None, :]
    )


def fit_clusters(
    features: np.ndarray,
    k: int = DEFAULT_CLUSTERS,
    *,
    seed: int = DEFAULT_SEED,
    max_iter: int = 100,
    sample_rows: int = FIT_SAMPLE_ROWS,
) -> np.ndarray:
    """Centroids (k, n_features) of seeded k-means (k-means++ start, Lloyd iterations)."""
    points = np.asarray(features, dtype=np.float64)
    if points.ndim != 2 or len(points) < k or k < 1:
        raise InvalidArgument(f"k-means needs at least k={k} rows of features, got shape {points.shape}")
    rng = np.random.default_rng(seed)
    if len(points) > sample_rows:
        points = points[np.sort(rng.choice(len(points), sample_rows, replace=False))]
    centroids = np.empty((k, points.shape[1]))
    centroids[0] = points[rng.integers(len(points))]
    nearest = _squared_distances(points, centroids[:1])[:, 0]
    for j in range(1, k):  # k-means++: next centre drawn in proportion to squared distance
        weights = np.maximum(nearest, 0.0)
        total = weights.sum()
        index = rng.choice(len(points), p=weights / total) if total > 0 else rng.integers(len(points))
        centroids[j] = points[index]
        nearest = np.minimum(nearest, _squared_distances(points, centroids[j : j + 1])[:, 0])
    labels = np.full(len(points), -1)
    for _ in range(max_iter):
        distances = _squared_distances(points, centroids)
        new_labels = distances.argmin(axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=k)
        for j in range(k):
            if counts[j]:
                centroids[j] = points[labels == j].mean(axis=0)
            else:  # an emptied cluster restarts at the point farthest from its centre
                far = int(distances[np.arange(len(points)), labels].argmax())
                centroids[j] = points[far]
    return centroids


def assign_clusters(features: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid of each row, as int8 (stored per row with the round)."""
    points = np.asarray(features, dtype=np.float64)
    return _squared_distances(points, centroids).argmin(axis=1).astype(np.int8)


@dataclass(frozen=True)
class ConcordanceResult:
    concordant: bool
    mean_ks: float  # NaN when no cluster has both validation and live rows
    cluster_ks: tuple[float, ...]  # per cluster, NaN where a side is empty (skipped)
    threshold: float

    @property
    def reason(self) -> str:
        if np.isnan(self.mean_ks):
            return "not concordant: no cluster has both validation and live rows to compare"
        verdict = "concordant" if self.concordant else "not concordant"
        sign = "<" if self.concordant else ">="
        worst = int(np.nanargmax(self.cluster_ks))
        return (
            f"{verdict}: mean KS between validation and live predictions per cluster {self.mean_ks:.4f} "
            f"{sign} {self.threshold} (largest {self.cluster_ks[worst]:.4f} in cluster {worst})"
        )


def check_concordance(
    predictions: np.ndarray,
    clusters: np.ndarray,
    split: np.ndarray,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    k: int | None = None,
) -> ConcordanceResult:
    """Mean per-cluster KS of validation vs live predictions; concordant if below ``threshold``.

    All arrays are aligned to the round's tournament rows: predictions, cluster label, split.
    Clusters lacking rows of either split are skipped (NaN), as a KS needs two samples.
    """
    predictions = np.asarray(predictions)
    if not (len(predictions) == len(clusters) == len(split)):
        raise InvalidArgument(
            f"concordance: predictions ({len(predictions)}), clusters ({len(clusters)}) and split "
            f"({len(split)}) must be aligned to the same rows"
        )
    if k is None:
        k = int(clusters.max()) + 1 if len(clusters) else 0
    validation = split == Split.VALIDATION
    live = split == Split.LIVE
    values = []
    for cluster in range(k):
        in_cluster = clusters == cluster
        a, b = predictions[in_cluster & validation], predictions[in_cluster & live]
        values.append(ks_statistic(a, b) if a.size and b.size else float("nan"))
    cluster_ks = np.asarray(values, dtype=float)
    mean = float(np.nanmean(cluster_ks)) if np.isfinite(cluster_ks).any() else float("nan")
    return ConcordanceResult(bool(mean < threshold), mean, tuple(cluster_ks.tolist()), threshold)
