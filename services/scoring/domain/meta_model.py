"""The two meta-model policies: Numerai's stake-weighted average and the 2016-style learned stacker.

Both work on gaussianised ranks (numerai-tools' ``gaussian(tie_kept_rank(.))``) so that a submission's
scale or calibration cannot buy it weight; only its ordering of the rows matters. A submission's
missing rows count as the median rank (gaussianised value 0), like numerai-tools' ``rank_and_fill``.

Learned stacker, choices and why:

* Non-negative least squares of the target on the models' gaussianised ranks, with a free intercept
  (features and target centred on the training rows) and a ridge ``ridge * n_train * I``. Non-
  negativity keeps weights interpretable as shares of the meta model; the ridge makes the optimum
  unique even when two models are identical (then they split the weight).
* Era-wise cross-fitting: eras (in ascending label order) are cut into ``folds`` contiguous blocks;
  the meta prediction of every row comes from weights *and* a link fitted without any row of its
  fold, so no era's meta prediction saw its own targets. Contiguous blocks keep neighbouring eras,
  which are the most alike, on the same side.
* Probabilities for logloss: the stacked value ``s = X w`` is standardised on the training rows and
  mapped through a logistic link ``p = 1 / (1 + exp(-(a + b s)))`` whose two parameters are fitted
  by maximum likelihood on the same training rows. This keeps the fit a cheap, convex least-squares
  problem while the logloss is still that of calibrated probabilities.
* Reported weights come from one more fit on all eras, normalised to sum to 1.
* Leave-one-out gain of a model = cross-fitted meta logloss without it minus with it (positive: the
  model helps). A model with zero weight in every fold has gain exactly 0 (dropping a variable that is
  zero at the unique optimum leaves the optimum unchanged), so only models with weight are refitted,
  each fold warm-started from the full solution.

The Gram-matrix formulation costs O(n_rows * n_models^2) once, O(n_models^2) memory per fold and keeps
the gaussianised features in float64 (8 * n_models * n_rows bytes), which is fine for the hundreds of
models a round has; it is not meant for tens of thousands. Its many small dense solves go through
LAPACK: on small machines whose OpenBLAS thread pool is slow to wake (measured on a 2-vCPU VM: a
150x150 solve took 60 ms instead of 0.4 ms), run the scoring process with ``OPENBLAS_NUM_THREADS=1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import solve
from scipy.special import expit

from .errors import InvalidScoringInput
from .inputs import check_mask, check_predictions, check_vector, present
from .metrics import DEFAULT_CHUNK_SIZE, DEFAULT_EPS
from .numerics import dot
from .ranking import gaussian_rank, gaussian_rank_block

__all__ = [
    "DEFAULT_FOLDS",
    "DEFAULT_RIDGE",
    "StackerFit",
    "fit_stacker",
    "gaussianised_submissions",
    "stake_weighted_meta_model",
]

DEFAULT_FOLDS = 5
DEFAULT_RIDGE = 0.1
"""Ridge per training row. Gaussianised ranks have unit variance, so 0.1 adds a tenth of a row's
variance to each diagonal entry. It makes the optimum unique (identical models split their weight).
On synthetic rounds with many weak, noisy models a larger ridge (1.0) gave a slightly better
cross-fitted logloss, with a few strong models a smaller one did; 0.1 is within 1e-4 of the best in
both. The link refits the overall scale, so shrinking the size of w costs nothing by itself."""


_F64 = NDArray[np.float64]


def _stake_weights(stakes: ArrayLike | None, m: int) -> _F64:
    """Normalised weights from integer satoshi stakes; equal weights when there are none."""
    if stakes is None:
        return np.full(m, 1.0 / m)
    array = np.asarray(stakes)
    if array.shape != (m,) or not np.issubdtype(array.dtype, np.integer):
        raise InvalidScoringInput(f"stakes must be {m} integer satoshi amounts, got {array.dtype} {array.shape}")
    negative = np.flatnonzero(array < 0)
    if negative.size:
        first = int(negative[0])
        raise InvalidScoringInput(f"stakes must not be negative; model {first} has {int(array[first])}")
    total = sum(int(s) for s in array)
    if total == 0:
        return np.full(m, 1.0 / m)
    return np.array([int(s) / total for s in array], dtype=np.float64)


def gaussianised_submissions(
    predictions: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    dtype: type[np.floating] = np.float32,
) -> NDArray[np.floating]:
    """Gaussianised tie-kept ranks of every submission (missing rows -> 0), block by block.

    float32 output by default: the values feed least squares, where float32 storage halves the
    memory and loses nothing that matters (the Gram matrix is accumulated in float64).
    """
    matrix = check_predictions(predictions)
    mask_array = check_mask(mask, matrix.shape)
    out = np.zeros(matrix.shape, dtype=dtype)
    for start in range(0, matrix.shape[0], chunk_size):
        stop = start + chunk_size
        block = matrix[start:stop]
        covered = present(block, None if mask_array is None else mask_array[start:stop])
        complete = covered.all(axis=1)
        if complete.all():
            gaussian_rank_block(block, out=out[start:stop])
            continue
        for j in range(block.shape[0]):
            keep = covered[j]
            if keep.any():
                out[start + j, keep] = gaussian_rank(block[j, keep])
    return out


def stake_weighted_meta_model(
    predictions: ArrayLike,
    stakes: ArrayLike | None = None,
    *,
    mask: ArrayLike | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> _F64:
    """Stake-weighted mean of the gaussianised-rank submissions (equal weights without stakes).

    ``stakes`` are integer satoshis, one per model; models with zero stake are skipped entirely.
    The result is in gaussianised-rank units; MMC re-ranks it, so only its ordering matters there.
    """
    matrix = check_predictions(predictions)
    mask_array = check_mask(mask, matrix.shape)
    weights = _stake_weights(stakes, matrix.shape[0])
    meta = np.zeros(matrix.shape[1])
    for start in range(0, matrix.shape[0], chunk_size):
        stop = start + chunk_size
        staked = np.flatnonzero(weights[start:stop] > 0)
        if staked.size == 0:
            continue
        block = matrix[start:stop][staked]
        ranks = gaussianised_submissions(
            block,
            mask=None if mask_array is None else mask_array[start:stop][staked],
            chunk_size=chunk_size,
            dtype=np.float64,
        )
        meta += np.einsum("i,ij->j", weights[start:stop][staked], ranks)
    return meta


@dataclass(frozen=True)
class StackerFit:
    """Result of the learned stacker.

    ``weights`` (n_models,): shares of the all-eras fit, summing to 1 (all 0 if no model helps).
    ``meta_model`` (n_rows,): cross-fitted meta probabilities; MMC is measured against it.
    ``meta_logloss``: logloss of ``meta_model`` against the targets.
    ``loo_gain`` (n_models,): cross-fitted meta logloss without the model minus with it.
    ``eras`` (n_eras,): the distinct era labels, ascending.
    ``fold_of_era`` (n_eras,): the fold of each era in ``eras``.
    ``fold_weights`` (n_folds, n_models): raw weights of each fold's fit.
    """

    weights: _F64
    meta_model: _F64
    meta_logloss: float
    loo_gain: _F64
    eras: NDArray[np.int64]
    fold_of_era: NDArray[np.intp]
    fold_weights: _F64


def _nnls_gram(q: _F64, c: _F64, allowed: NDArray[np.bool_], start: NDArray[np.bool_] | None) -> _F64:
    """Lawson-Hanson active set for min 1/2 w'Qw - c'w subject to w >= 0 (Q positive definite).

    Working on the Gram matrix keeps every step O(k^2) in the number of models, and ``start`` (a
    support to begin from) makes the leave-one-out refits converge in a few steps.
    """
    m = c.size
    passive = np.zeros(m, dtype=bool) if start is None else start & allowed
    w = np.zeros(m)
    tol = 1e-12 * max(1.0, float(np.abs(c).max()))

    def restricted(support: NDArray[np.bool_]) -> _F64:
        z = np.zeros(m)
        idx = np.flatnonzero(support)
        if idx.size:
            z[idx] = solve(q[np.ix_(idx, idx)], c[idx], assume_a="pos", check_finite=False)
        return z

    while passive.any():  # warm start: shrink the starting support until its solution is feasible
        z = restricted(passive)
        if np.all(z[passive] > 0):
            w = z
            break
        passive &= z > 0
    for _ in range(3 * m + 10):
        gradient = c - q @ w
        gradient[passive | ~allowed] = -np.inf
        j = int(np.argmax(gradient))
        if not gradient[j] > tol:
            break
        passive[j] = True
        while True:
            z = restricted(passive)
            if np.all(z[passive] > 0):
                w = z
                break
            blocking = np.flatnonzero(passive & (z <= 0))
            ratios = w[blocking] / (w[blocking] - z[blocking])
            first = int(np.argmin(ratios))
            w = w + float(ratios[first]) * (z - w)
            w[blocking[first]] = 0.0  # exactly, so every pass drops at least one model
            passive &= w > 0
            w[~passive] = 0.0
    return w


def _fit_link(s: _F64, y: _F64) -> tuple[float, float, float, float]:
    """Logistic link p = expit(a + b (s - mu) / sd) by Newton's method; returns (a, b, mu, sd)."""
    mu = float(s.mean())
    sd = float(s.std()) or 1.0
    x = (s - mu) / sd
    mean_y = min(max(float(y.mean()), 1e-6), 1.0 - 1e-6)
    params = np.array([np.log(mean_y / (1.0 - mean_y)), 0.0])
    for _ in range(100):
        p = expit(params[0] + params[1] * x)
        weight = p * (1.0 - p)
        residual = y - p
        gradient = np.array([residual.sum(), dot(residual, x) - 1e-9 * params[1]])
        wx = dot(weight, x)
        hessian = np.array([[weight.sum(), wx], [wx, dot(weight, x * x) + 1e-9]])
        step = np.linalg.solve(hessian, gradient)
        params += step
        if np.max(np.abs(step)) < 1e-12:
            break
    return float(params[0]), float(params[1]), mu, sd


@dataclass(frozen=True)
class _Folds:
    """Rows of each fold and the per-fold sufficient statistics of the least-squares problem."""

    rows: list[NDArray[np.intp]]
    train: list[NDArray[np.intp]]
    gram: list[_F64]
    x_sum: list[_F64]
    xy_sum: list[_F64]
    y_sum: list[float]


def _fold_statistics(features: _F64, y: _F64, rows: list[NDArray[np.intp]]) -> _Folds:
    gram, x_sum, xy_sum, y_sum = [], [], [], []
    for fold_rows in rows:
        block = features[:, fold_rows]
        gram.append(block @ block.T)
        x_sum.append(block.sum(axis=1))
        xy_sum.append(np.einsum("ij,j->i", block, y[fold_rows]))
        y_sum.append(float(y[fold_rows].sum()))
    everything = np.arange(y.size)
    train = [np.setdiff1d(everything, fold_rows, assume_unique=True) for fold_rows in rows]
    return _Folds(rows, train, gram, x_sum, xy_sum, y_sum)


def _training_problem(folds: _Folds, excluded: int | None, ridge: float) -> tuple[_F64, _F64]:
    """Q and c of the centred, ridged least squares on every fold except ``excluded``."""
    keep = [f for f in range(len(folds.rows)) if f != excluded]
    n = sum(folds.rows[f].size for f in keep)
    gram = sum(folds.gram[f] for f in keep)
    x_mean = sum(folds.x_sum[f] for f in keep) / n
    y_mean = sum(folds.y_sum[f] for f in keep) / n
    xy = sum(folds.xy_sum[f] for f in keep)
    q = gram - n * np.outer(x_mean, x_mean)
    q[np.diag_indices_from(q)] += ridge * n
    return np.asarray(q, dtype=np.float64), np.asarray(xy - n * y_mean * x_mean, dtype=np.float64)


def _held_out(features: _F64, y: _F64, folds: _Folds, which: list[int], weights: list[_F64]) -> list[_F64]:
    """Held-out probabilities of the folds ``which``, fold f predicted by ``weights[i]`` and a link
    fitted on the rows outside f. One matrix product gives the stacked values of all those folds."""
    stacked = np.array(weights) @ features
    out = []
    for i, f in enumerate(which):
        train = folds.train[f]
        a, b, mu, sd = _fit_link(stacked[i, train], y[train])
        out.append(expit(a + b * (stacked[i, folds.rows[f]] - mu) / sd))
    return out


def _loss_sum(p: _F64, y: _F64, eps: float) -> float:
    clipped = np.clip(p, eps, 1.0 - eps)
    return float(-np.sum(y * np.log(clipped) + (1.0 - y) * np.log1p(-clipped)))


def fit_stacker(
    predictions: ArrayLike,
    targets: ArrayLike,
    eras: ArrayLike,
    *,
    folds: int = DEFAULT_FOLDS,
    ridge: float = DEFAULT_RIDGE,
    eps: float = DEFAULT_EPS,
    mask: ArrayLike | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> StackerFit:
    """Fit non-negative stacking weights with era-wise cross-fitting (see the module docstring)."""
    matrix = check_predictions(predictions)
    m, n = matrix.shape
    y = check_vector("targets", targets, n)
    if np.any((y < 0.0) | (y > 1.0)):
        raise InvalidScoringInput("the learned stacker needs targets in [0, 1] (it fits probabilities)")
    era_array = np.asarray(eras)
    if era_array.shape != (n,) or not np.issubdtype(era_array.dtype, np.integer):
        raise InvalidScoringInput(f"eras must be one integer per row ({n}), got {era_array.dtype} {era_array.shape}")
    labels, era_index = np.unique(era_array, return_inverse=True)
    if labels.size < 2:
        raise InvalidScoringInput("the learned stacker needs at least 2 eras to cross-fit")
    if folds < 2:
        raise InvalidScoringInput(f"folds must be at least 2, got {folds}")
    k = min(folds, labels.size)
    fold_of_era = (np.arange(labels.size) * k) // labels.size
    row_fold = fold_of_era[era_index]
    rows = [np.flatnonzero(row_fold == f) for f in range(k)]

    features = np.asarray(
        gaussianised_submissions(matrix, mask=mask, chunk_size=chunk_size, dtype=np.float64), dtype=np.float64
    )
    stats = _fold_statistics(features, y, rows)
    allowed = np.ones(m, dtype=bool)
    problems = [_training_problem(stats, f, ridge) for f in range(k)]
    fold_weights = [_nnls_gram(q, c, allowed, None) for q, c in problems]
    every_fold = list(range(k))
    held_out = _held_out(features, y, stats, every_fold, fold_weights)
    fold_loss = [_loss_sum(p, y[stats.rows[f]], eps) for f, p in zip(every_fold, held_out, strict=True)]
    meta = np.empty(n)
    for f, p in zip(every_fold, held_out, strict=True):
        meta[stats.rows[f]] = p
    meta_logloss = sum(fold_loss) / n

    loo_gain = np.zeros(m)
    for j in np.flatnonzero(np.any(np.array(fold_weights) > 0, axis=0)):
        without = allowed.copy()
        without[j] = False
        changed = [f for f in every_fold if fold_weights[f][j] > 0]
        refits = [_nnls_gram(*problems[f], without, fold_weights[f] > 0) for f in changed]
        losses = list(fold_loss)
        for f, p in zip(changed, _held_out(features, y, stats, changed, refits), strict=True):
            losses[f] = _loss_sum(p, y[stats.rows[f]], eps)
        loo_gain[j] = sum(losses) / n - meta_logloss

    q_all, c_all = _training_problem(stats, None, ridge)
    start = np.any(np.array(fold_weights) > 0, axis=0)
    final = _nnls_gram(q_all, c_all, allowed, start)
    total = final.sum()
    return StackerFit(
        weights=final / total if total > 0 else final,
        meta_model=meta,
        meta_logloss=meta_logloss,
        loo_gain=loo_gain,
        eras=labels.astype(np.int64),
        fold_of_era=fold_of_era.astype(np.intp),
        fold_weights=np.array(fold_weights),
    )
