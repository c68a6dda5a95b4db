"""Scores of many submissions at once: CORR, MMC, logloss and AUC, over all rows and per era.

CORR and MMC reproduce numerai-tools 0.7 (``numerai_corr`` and ``correlation_contribution``) to
floating-point rounding; see ``ranking`` for how the ranks are computed without pandas. Both are
rewritten as dot products in sorted order so that a submission costs one sort plus a gather:

* CORR = Pearson(q, t') where q = sign(g)|g|^1.5 of the gaussianised ranks g and
  t' = sign(t_c)|t_c|^1.5 with t_c the target centred over *all* targets (numerai-tools centres before
  it drops missing ids). With t' centred over the scored rows the numerator is simply ``q . t'``.
* MMC = t_c . (g - m (g.m)/(m.m)) / n = g . w / n with w = t_c - m (t_c.m)/(m.m), the target
  orthogonalised to the gaussianised meta model m once instead of every submission to the meta model
  (the same algebra as numerai-tools' ``orthogonalize``). The target is multiplied by 4 when all
  values are in [0, 1] and centred over the scored rows, as there.

Predictions are stored as float32; all arithmetic is float64. Submissions are processed in blocks of
``chunk_size`` models so memory stays bounded whatever their number. A submission with missing ids
(NaN, or False in ``mask``) is scored on the rows it has, with the meta model re-ranked on those rows,
exactly as numerai-tools' pairwise ``filter_sort_index`` does; those (rare) models go one by one.
Inputs are never modified.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .errors import InvalidScoringInput
from .inputs import check_mask, check_predictions, check_vector, present
from .numerics import dot
from .ranking import GaussTables, gauss_tables, gaussian_rank, sort_block

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_EPS",
    "DEFAULT_MAX_MISSING_RATIO",
    "MetricValues",
    "RoundScores",
    "corr_mmc",
    "per_row_logloss",
    "score_submissions",
]

DEFAULT_EPS = 1e-15
"""Probabilities are clipped to [eps, 1 - eps] before the logarithm (the classic scikit-learn value)."""
DEFAULT_CHUNK_SIZE = 16
"""Models per block: amortises Python overhead; memory per block is ~16 * n_rows * 40 bytes (the
sort itself works on cache-sized pieces of a block, see ``ranking``)."""
DEFAULT_MAX_MISSING_RATIO = 0.2
"""numerai-tools refuses to score a submission missing more than 20% of the ids; so do we."""

_ALL_METRICS = frozenset({"corr", "mmc", "logloss", "auc"})
_F64 = NDArray[np.float64]


@dataclass(frozen=True)
class MetricValues:
    """One array per metric; shape (n_models,) for a whole round or (n_models, n_eras) per era.

    ``logloss`` is the mean cross-entropy (lower is better), the others are higher-is-better.
    ``auc`` is NaN when the targets are not binary or the rows hold a single class; metrics not
    requested are NaN.
    """

    corr: _F64
    mmc: _F64
    logloss: _F64
    auc: _F64


@dataclass(frozen=True)
class RoundScores:
    """Scores of every submission of a round: over all rows as one cross-section, and per era.

    ``eras`` are the distinct era labels in ascending order; column e of every ``by_era`` array
    belongs to ``eras[e]``.
    """

    overall: MetricValues
    eras: NDArray[np.int64]
    by_era: MetricValues


@dataclass(frozen=True)
class _RowSet:
    """Everything that depends only on the targets and meta model of one set of scored rows."""

    n: int
    tables: GaussTables
    corr_target: _F64
    corr_target_ss: float
    mmc_target: _F64
    targets: _F64
    labels: _F64 | None
    n_pos: int


def _row_set(targets: _F64, corr_centre: float, meta: _F64, binary: bool) -> _RowSet | None:
    """Prepare the target vectors of one row set; ``None`` when it has no rows to score."""
    n = targets.size
    if n == 0:
        return None
    centred = targets - corr_centre
    powered = np.sign(centred) * np.abs(centred) ** 1.5
    corr_target = powered - powered.mean()
    scaled = targets * 4.0 if bool(np.all((targets >= 0.0) & (targets <= 1.0))) else targets
    scaled_c = scaled - scaled.mean()
    meta_g = gaussian_rank(meta)
    with np.errstate(invalid="ignore", divide="ignore"):
        mmc_target = scaled_c - meta_g * (dot(scaled_c, meta_g) / dot(meta_g, meta_g))
    return _RowSet(
        n=n,
        tables=gauss_tables(n),
        corr_target=corr_target,
        corr_target_ss=float(dot(corr_target, corr_target)),
        mmc_target=mmc_target,
        targets=targets,
        labels=targets if binary else None,
        n_pos=int(targets.sum()) if binary else 0,
    )


def _block_scores(block: NDArray[Any], rows: _RowSet | None, wanted: Collection[str], eps: float) -> dict[str, _F64]:
    """Score a block of complete submissions (no missing values) on one row set."""
    k = block.shape[0]
    nan = np.full(k, np.nan)
    if rows is None:
        return {name: nan for name in wanted}
    out: dict[str, _F64] = {}
    tables = rows.tables
    if "corr" in wanted or "mmc" in wanted or ("auc" in wanted and rows.labels is not None):
        ranked = sort_block(block)
        if "corr" in wanted:
            num = ranked.dot(rows.corr_target, tables.gauss_pow_untied, tables.gauss_pow)
            q_sum, q_sumsq = ranked.moments(
                tables.gauss_pow,
                tables.gauss_pow_untied,
                tables.gauss_pow_untied_sum,
                tables.gauss_pow_untied_sumsq,
            )
            q_ss = q_sumsq - q_sum**2 / rows.n
            with np.errstate(invalid="ignore", divide="ignore"):
                out["corr"] = num / np.sqrt(q_ss * rows.corr_target_ss)
        if "mmc" in wanted:
            out["mmc"] = ranked.dot(rows.mmc_target, tables.gauss_untied, tables.gauss) / rows.n
        if "auc" in wanted and rows.labels is not None:
            codes_table = np.arange(2 * rows.n, dtype=np.float64)
            rank_sum = 0.5 * ranked.dot(rows.labels, tables.codes_untied, codes_table)
            n_pos, n_neg = rows.n_pos, rows.n - rows.n_pos
            with np.errstate(invalid="ignore", divide="ignore"):
                auc = (rank_sum + 0.5 * n_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
            out["auc"] = auc if n_pos and n_neg else nan
    if "auc" in wanted and "auc" not in out:
        out["auc"] = nan
    if "logloss" in wanted:
        out["logloss"] = _block_logloss(block, rows, eps)
    return out


def _block_logloss(block: NDArray[Any], rows: _RowSet, eps: float) -> _F64:
    """Mean cross-entropy of each submission; one logarithm per value when the targets are binary."""
    p = np.clip(block, eps, 1.0 - eps, dtype=np.float64)
    if rows.labels is not None:
        np.subtract(1.0, p, out=p, where=rows.labels == 0.0)
        return -np.log(p).sum(axis=1) / rows.n
    y = rows.targets
    return -(np.einsum("ij,j->i", np.log(p), y) + np.einsum("ij,j->i", np.log1p(-p), 1.0 - y)) / rows.n


def per_row_logloss(probabilities: ArrayLike, targets: ArrayLike, *, eps: float = DEFAULT_EPS) -> _F64:
    """Cross-entropy of each row (the loss vector the Ladder compares), clipped like the mean logloss."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), eps, 1.0 - eps)
    y = np.asarray(targets, dtype=np.float64)
    if p.shape != y.shape:
        raise InvalidScoringInput(f"probabilities have shape {p.shape} but targets have shape {y.shape}")
    return -(y * np.log(p) + (1.0 - y) * np.log1p(-p))


@dataclass(frozen=True)
class _Plan:
    """Row sets of a round: all rows, and each era's rows (contiguous after ``permutation``)."""

    targets: _F64
    meta: _F64
    binary: bool
    whole: _RowSet | None
    era_labels: NDArray[np.int64]
    era_index: NDArray[np.intp] | None
    permutation: NDArray[np.intp] | None
    bounds: list[tuple[int, int]]
    era_rows: list[_RowSet | None]
    era_centres: _F64


def _plan(targets: _F64, meta: _F64, eras: ArrayLike | None) -> _Plan:
    n = targets.size
    binary = bool(np.all((targets == 0.0) | (targets == 1.0)))
    whole = _row_set(targets, float(targets.mean()), meta, binary)
    if eras is None:
        empty = np.empty(0, dtype=np.int64)
        return _Plan(targets, meta, binary, whole, empty, None, None, [], [], np.empty(0))
    era_array = np.asarray(eras)
    if era_array.shape != (n,) or not np.issubdtype(era_array.dtype, np.integer):
        raise InvalidScoringInput(f"eras must be one integer per row ({n}), got {era_array.dtype} {era_array.shape}")
    labels, era_index = np.unique(era_array, return_inverse=True)
    counts = np.bincount(era_index, minlength=labels.size)
    ends = np.cumsum(counts)
    bounds = [(int(end - count), int(end)) for end, count in zip(ends, counts, strict=True)]
    permutation = None if bool(np.all(np.diff(era_index) >= 0)) else np.argsort(era_index, kind="stable")
    t_sorted = targets if permutation is None else targets[permutation]
    m_sorted = meta if permutation is None else meta[permutation]
    centres = np.array([t_sorted[lo:hi].mean() for lo, hi in bounds])
    era_rows = [
        _row_set(t_sorted[lo:hi], float(c), m_sorted[lo:hi], binary)
        for (lo, hi), c in zip(bounds, centres, strict=True)
    ]
    era_labels = labels.astype(np.int64)
    return _Plan(targets, meta, binary, whole, era_labels, era_index, permutation, bounds, era_rows, centres)


def _score(
    predictions: NDArray[Any],
    plan: _Plan,
    wanted: frozenset[str],
    *,
    mask: NDArray[np.bool_] | None,
    eps: float,
    chunk_size: int,
    max_missing_ratio: float,
) -> tuple[dict[str, _F64], dict[str, _F64]]:
    """Drive the blocks: complete submissions vectorised, ones with missing ids one by one."""
    m, n = predictions.shape
    n_eras = len(plan.bounds)
    overall = {name: np.full(m, np.nan) for name in _ALL_METRICS}
    by_era = {name: np.full((m, n_eras), np.nan) for name in _ALL_METRICS}
    if chunk_size < 1:
        raise InvalidScoringInput(f"chunk_size must be at least 1, got {chunk_size}")
    for start in range(0, m, chunk_size):
        block = predictions[start : start + chunk_size]
        covered = present(block, None if mask is None else mask[start : start + chunk_size])
        complete = covered.all(axis=1)
        if complete.any():
            models = start + np.flatnonzero(complete)
            full = block if complete.all() else block[complete]
            for name, values in _block_scores(full, plan.whole, wanted, eps).items():
                overall[name][models] = values
            if n_eras:
                arranged = full if plan.permutation is None else full[:, plan.permutation]
                for e, (lo, hi) in enumerate(plan.bounds):
                    era_scores = _block_scores(arranged[:, lo:hi], plan.era_rows[e], wanted, eps)
                    for name, values in era_scores.items():
                        by_era[name][models, e] = values
        for j in np.flatnonzero(~complete):
            model = start + int(j)
            keep = covered[j]
            count = int(keep.sum())
            if count < (1.0 - max_missing_ratio) * n:
                raise InvalidScoringInput(
                    f"submission {model} covers only {count} of {n} rows; at least "
                    f"{1.0 - max_missing_ratio:.0%} are needed",
                    metadata={"model_index": str(model)},
                )
            _score_partial(block[j], keep, model, plan, wanted, eps, overall, by_era)
    return overall, by_era


def _score_partial(
    values: NDArray[Any],
    keep: NDArray[np.bool_],
    model: int,
    plan: _Plan,
    wanted: frozenset[str],
    eps: float,
    overall: dict[str, _F64],
    by_era: dict[str, _F64],
) -> None:
    """Score one submission on the rows it covers, re-deriving targets and meta model on those rows."""
    rows = _row_set(plan.targets[keep], float(plan.targets.mean()), plan.meta[keep], plan.binary)
    for name, value in _block_scores(values[keep][np.newaxis, :], rows, wanted, eps).items():
        overall[name][model] = value[0]
    if plan.era_index is None:
        return
    for e in range(len(plan.bounds)):
        sel = keep & (plan.era_index == e)
        era_rows = _row_set(plan.targets[sel], float(plan.era_centres[e]), plan.meta[sel], plan.binary)
        for name, value in _block_scores(values[sel][np.newaxis, :], era_rows, wanted, eps).items():
            by_era[name][model, e] = value[0]


def _prepare(
    predictions: ArrayLike, targets: ArrayLike, meta_model: ArrayLike, mask: ArrayLike | None
) -> tuple[NDArray[Any], _F64, _F64, NDArray[np.bool_] | None]:
    target_array = np.asarray(targets)
    n_rows = target_array.shape[0] if target_array.ndim == 1 else -1
    target_vector = check_vector("targets", target_array, n_rows)
    matrix = check_predictions(predictions, n_rows)
    meta = check_vector("meta_model", meta_model, n_rows)
    return matrix, target_vector, meta, check_mask(mask, matrix.shape)


def score_submissions(
    predictions: NDArray[np.floating],
    targets: ArrayLike,
    meta_model: ArrayLike,
    eras: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    eps: float = DEFAULT_EPS,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_missing_ratio: float = DEFAULT_MAX_MISSING_RATIO,
    metrics: Collection[str] = _ALL_METRICS,
) -> RoundScores:
    """Every metric of every submission, over all rows and per era.

    ``predictions`` is (n_models, n_rows), float32 as stored (float64 accepted); ``targets``,
    ``meta_model`` and ``eras`` (integers) have one value per row, in any order. Per-era scores use
    only that era's rows (ranks, target centring and meta-model ranks within the era), exactly as
    calling numerai-tools on each era's slice. A submission's missing ids are NaN, or False in the
    optional boolean ``mask`` of the same shape (values under True must then be non-NaN).
    ``metrics`` restricts the work to a subset of {"corr", "mmc", "logloss", "auc"} (the others come
    back NaN). Raises ``InvalidScoringInput`` naming the argument, row or submission at fault.
    """
    predictions, target_vector, meta, mask_array = _prepare(predictions, targets, meta_model, mask)
    wanted = frozenset(metrics)
    if not wanted <= _ALL_METRICS:
        unknown = sorted(wanted - _ALL_METRICS)
        raise InvalidScoringInput(f"unknown metrics {unknown}; known: {sorted(_ALL_METRICS)}")
    plan = _plan(target_vector, meta, eras)
    overall, by_era = _score(
        predictions,
        plan,
        wanted,
        mask=mask_array,
        eps=eps,
        chunk_size=chunk_size,
        max_missing_ratio=max_missing_ratio,
    )
    return RoundScores(
        overall=MetricValues(**overall),
        eras=plan.era_labels,
        by_era=MetricValues(**by_era),
    )


def corr_mmc(
    predictions: NDArray[np.floating],
    targets: ArrayLike,
    meta_model: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_missing_ratio: float = DEFAULT_MAX_MISSING_RATIO,
) -> tuple[_F64, _F64]:
    """CORR and MMC of every submission over all rows: the hot path, and what numerai-tools computes."""
    predictions, target_vector, meta, mask_array = _prepare(predictions, targets, meta_model, mask)
    plan = _plan(target_vector, meta, None)
    overall, _ = _score(
        predictions,
        plan,
        frozenset({"corr", "mmc"}),
        mask=mask_array,
        eps=DEFAULT_EPS,
        chunk_size=chunk_size,
        max_missing_ratio=max_missing_ratio,
    )
    return overall["corr"], overall["mmc"]
