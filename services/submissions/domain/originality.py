"""Originality: is an upload a near copy of an earlier submission of the round?

Why: in a tournament paying per submission, copying a good model (or resubmitting it under
another name, slightly perturbed) earns without contributing. Numerai's submission-criteria
(2017) compared each new submission with every earlier selected submission of the round from
*other* participants and marked it not original if, for any of them, ``|pearsonr| > 0.95``, or
``ks_2samp`` statistic ``< 0.005`` (a duplicate), or ``<= 0.03`` for at least one of them
(``max_similar_models = 1``).

Our default departs from it in three ways (measured on the demo's cast, see
``crowdquant/demo/originality_gate.py`` and the README):

- the KS pass is off by default (``OriginalityRule.ks``): it compares distributions, not
  predictions, so honest independent models whose prediction distributions are alike (every
  logistic model, every uniform-noise model) were flagged: 76% of the demo's honest models at the
  2016 size, 12% even with the demo's narrowed 0.002;
- a rank correlation pass (Spearman, ``|rho| > 0.95``) joins the Pearson one: CORR and MMC are
  computed on ranks, so a monotone transform of a copy (e.g. cubing its distance from 0.5, which
  takes Pearson to about 0.8) earns exactly what the copy earns and must be flagged like one;
- the service compares an upload with every earlier submission except earlier versions of the
  *same model* (``exclude``): a participant's second model that copies its first is flagged too.

How it stays fast against 100+ earlier submissions of 36k rows: ``EarlierSubmissions`` keeps,
per earlier submission, a unit-norm centred copy (float32) for one matrix-vector product of all
Pearson correlations (recomputed in float64 where the float32 error bound reaches the threshold),
and a quantile sketch of its sorted values with the exact empirical-CDF counts there. One merge
of all sketch points into the upload's sorted values bounds every KS statistic from below (the
CDFs at real data points) and above (the CDFs are monotone between sketch points). Where the
bounds straddle a threshold, the statistic is evaluated exactly on just the gaps that could hold
the maximum. The KS statistic is the exact rational ``count / n`` (see ``ks``), so the flags are
those of a loop over ``scipy.stats.pearsonr`` / ``ks_2samp`` (the tests check against one) at a
fraction of the cost: 5-20 ms against 100 earlier submissions of 36,072 rows on a busy shared
2-core host (load-dependent), where that loop takes 4-8 s. The default's rank pass adds one sort of
the upload and of its most rank-correlated earlier submission: about 1.5-3x the 2017 rule's time
measured side by side on the same busy host (100 earlier submissions of 36,072 rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.stats import rankdata

from shared.errors import InvalidArgument

SKETCH_POINTS = 1024


@dataclass(frozen=True)
class OriginalityRule:
    """Thresholds; the KS ones are the 2017 rule's (submission-criteria ``originality.py``).

    ``OriginalityRule.of_2017()`` is the 2017 rule exactly (no rank pass, KS pass on).
    """

    max_abs_pearson: float = 0.95  # |r| above this: not original
    duplicate_ks_statistic: float = 0.005  # KS below this: a duplicate, not original (KS pass on)
    similar_ks_statistic: float = 0.03  # KS at or below this: similar (KS pass on)
    similar_submissions_limit: int = 1  # this many similar earlier submissions: not original
    max_abs_rank_correlation: float = 0.95  # |Spearman rho| above this: not original (1.0: pass off)
    ks: bool = False  # the 2017 KS pass (off by default: it flags honest models, see the module)

    @classmethod
    def of_2017(cls) -> OriginalityRule:
        return cls(max_abs_rank_correlation=1.0, ks=True)


@dataclass(frozen=True)
class OriginalityResult:
    """The flag, a sentence saying why, and the earlier submissions closest by each measure."""

    original: bool
    reason: str
    compared: int  # earlier submissions compared with
    similar_count: int  # earlier submissions with KS <= similar_ks_statistic (0 when decided by Pearson)
    pearson: float | None  # Pearson r with the most correlated earlier submission (None: undefined)
    pearson_label: str | None
    ks: float | None  # KS statistic with the closest earlier submission by KS (None: not reached)
    ks_label: str | None
    rank_correlation: float | None = None  # Spearman rho with the most rank-correlated one (None: not reached)
    rank_label: str | None = None

    decided_by: str = ""  # "pearson", "spearman" or "ks" when not original

    @property
    def statistic(self) -> tuple[float, str | None]:
        """The deciding statistic (for an original upload: the highest |Pearson|) and the submission."""
        if self.decided_by == "ks":
            return float(self.ks or 0.0), self.ks_label
        if self.decided_by == "spearman":
            return abs(self.rank_correlation or 0.0), self.rank_label
        return abs(self.pearson or 0.0), self.pearson_label


def _centred_unit(values: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm in float64 (zero rows for constant ones)."""
    centred = values.astype(np.float64) - values.mean(axis=-1, keepdims=True, dtype=np.float64)
    norm = np.linalg.norm(centred, axis=-1, keepdims=True)
    unit: np.ndarray = np.divide(centred, norm, out=np.zeros_like(centred), where=norm > 0)
    return unit


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis, ties given their average (``scipy.stats.rankdata``), float64."""
    return np.atleast_2d(rankdata(np.atleast_2d(values), axis=-1, method="average")).astype(np.float64)


def _sketch(sorted_rows: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantile points of sorted rows with exact counts of values <= (right) and < (left) each point."""
    n = sorted_rows.shape[1]
    index = np.unique(np.linspace(0, n - 1, min(points, n)).round().astype(np.int64))
    values = sorted_rows[:, index]
    right = np.empty(values.shape, dtype=np.int64)
    left = np.empty(values.shape, dtype=np.int64)
    for i, row in enumerate(sorted_rows):
        right[i] = np.searchsorted(row, values[i], side="right")
        left[i] = np.searchsorted(row, values[i], side="left")
    return values, right, left


_ARRAYS = ("values", "sorted_values", "unit", "rank_unit", "sketch_values", "sketch_right", "sketch_left")
EARLIER_ARRAYS = _ARRAYS


@dataclass(frozen=True, eq=False)
class EarlierSubmissions:
    """Earlier submissions of one round, prepared once for comparing many uploads with them.

    Immutable: ``with_submission`` returns a new object, so a service can cache one per round and
    swap it when a submission is accepted. Memory: ~4 x 4 bytes per row and submission.
    """

    labels: tuple[str, ...]
    sketch_points: int
    values: np.ndarray  # (m, n) float32 as stored (exact Pearson)
    sorted_values: np.ndarray  # (m, n) float32, each row ascending (exact KS)
    unit: np.ndarray  # (m, n) float32, centred, unit norm (Pearson screen)
    rank_unit: np.ndarray  # (m, n) float32, average ranks centred, unit norm (Spearman screen)
    sketch_values: np.ndarray  # (m, q) float32
    sketch_right: np.ndarray  # (m, q) int64: count of row values <= sketch value
    sketch_left: np.ndarray  # (m, q) int64: count of row values < sketch value
    sketch_order: np.ndarray  # (m q,) stable argsort of all sketch values (flattened)
    sketch_sorted: np.ndarray  # (m q,) float32: all sketch values ascending

    @classmethod
    def build(
        cls, labels: Sequence[str], predictions: np.ndarray, *, sketch_points: int = SKETCH_POINTS
    ) -> EarlierSubmissions:
        """From a (m, n) matrix of aligned predictions (float32 as stored), one label per row."""
        values = np.asarray(predictions, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] == 0:
            raise InvalidArgument(f"earlier submissions must be an (m, n_rows) matrix, got shape {values.shape}")
        if len(labels) != values.shape[0]:
            raise InvalidArgument(f"{len(labels)} labels for {values.shape[0]} earlier submissions")
        if not np.isfinite(values).all():
            raise InvalidArgument("earlier submissions must be finite (they passed the upload checks)")
        sorted_values = np.sort(values, axis=1)
        sketch = _sketch(sorted_values, sketch_points)
        unit = _centred_unit(values).astype(np.float32)
        rank_unit = _centred_unit(average_ranks(values)).astype(np.float32)
        return cls._assemble(tuple(labels), sketch_points, values, sorted_values, unit, rank_unit, *sketch)

    @classmethod
    def _assemble(
        cls,
        labels: tuple[str, ...],
        sketch_points: int,
        *arrays: np.ndarray,
        previous: EarlierSubmissions | None = None,
    ) -> EarlierSubmissions:
        """Add the global order of all sketch points, which lets one merge place them in an upload.

        With ``previous`` (whose rows are the first rows of ``arrays``) only the new rows' points are
        sorted and merged into its order, O(m q) instead of a sort of all m q points; the result is
        the same as the full stable sort (ties in flat index order, and every new point comes after
        the earlier ones).
        """
        parts = dict(zip(_ARRAYS, arrays, strict=True))
        flat = parts["sketch_values"].ravel()
        if previous is None or len(previous) == 0:
            order = np.argsort(flat, kind="stable")
            return cls(labels, sketch_points, **parts, sketch_order=order, sketch_sorted=flat[order])
        start = previous.sketch_sorted.size
        new_order = np.argsort(flat[start:], kind="stable") + start
        new_sorted = flat[new_order]
        at = np.searchsorted(previous.sketch_sorted, new_sorted, side="right")
        return cls(
            labels,
            sketch_points,
            **parts,
            sketch_order=np.insert(previous.sketch_order, at, new_order),
            sketch_sorted=np.insert(previous.sketch_sorted, at, new_sorted),
        )

    @classmethod
    def from_arrays(
        cls,
        labels: tuple[str, ...],
        sketch_points: int,
        *arrays: np.ndarray,
        previous: EarlierSubmissions | None = None,
    ) -> EarlierSubmissions:
        """From already prepared per-row arrays (``EARLIER_ARRAYS`` order), e.g. views of growing buffers;
        ``previous``: the set these arrays extend by rows at the end (their sketch order is reused)."""
        return cls._assemble(tuple(labels), sketch_points, *arrays, previous=previous)

    @classmethod
    def empty(cls, n_rows: int, *, sketch_points: int = SKETCH_POINTS) -> EarlierSubmissions:
        return cls.build([], np.zeros((0, n_rows), dtype=np.float32), sketch_points=sketch_points)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_rows(self) -> int:
        return int(self.values.shape[1])

    def subset(self, keep: np.ndarray) -> EarlierSubmissions:
        """The submissions where ``keep`` is true (e.g. other participants' only), without re-sorting."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (len(self),):
            raise InvalidArgument(f"subset mask has shape {keep.shape}; expected ({len(self)},)")
        labels = tuple(label for label, k in zip(self.labels, keep, strict=True) if k)
        return EarlierSubmissions._assemble(labels, self.sketch_points, *(getattr(self, n)[keep] for n in _ARRAYS))

    def with_submission(self, label: str, predictions: np.ndarray) -> EarlierSubmissions:
        """A new set with one more accepted submission (one sort of the new row, O(m n) copy)."""
        row = np.asarray(predictions, dtype=np.float32)
        if row.shape != (self.n_rows,):
            raise InvalidArgument(f"submission has shape {row.shape}; the round has {self.n_rows} rows")
        added = EarlierSubmissions.build([label], row[None, :], sketch_points=self.sketch_points)
        merged = [np.concatenate([getattr(self, name), getattr(added, name)]) for name in _ARRAYS]
        return EarlierSubmissions._assemble(self.labels + added.labels, self.sketch_points, *merged, previous=self)


def _screen_tolerance(n: int) -> float:
    """Worst-case error of a float32 dot product of two unit vectors of length n (gamma_n + rounding)."""
    u = 2.0**-24
    return (n + 3) * u * 1.01


def exact_pearson(
    predictions: np.ndarray, earlier: EarlierSubmissions, rows: np.ndarray, *, ranks: bool = False
) -> np.ndarray:
    """Pearson r in float64 with the given earlier rows (scipy up to rounding).

    ``ranks``: ``predictions`` are the upload's average ranks and the earlier rows are ranked too, so
    the result is Spearman's rho.
    """
    x = _centred_unit(np.asarray(predictions, dtype=np.float32)[None, :])[0]  # ranks < 2**24: exact
    if not x.any() or rows.size == 0:
        return np.full(rows.size, np.nan)
    values = earlier.values[rows]
    others = _centred_unit(average_ranks(values) if ranks else values)
    r = np.clip(np.einsum("ij,j->i", others, x), -1.0, 1.0)
    r[~others.any(axis=1)] = np.nan
    return r


def abs_pearson_against(
    predictions: np.ndarray, earlier: EarlierSubmissions, threshold: float, *, ranks: bool = False
) -> np.ndarray:
    """|r| (``ranks``: ``predictions`` are ranks, |rho|) with every earlier submission: a float32 product,
    exact near ``threshold``.

    NaN where either side is constant (scipy returns NaN there too, which never exceeds a threshold).
    """
    x = _centred_unit(np.asarray(predictions, dtype=np.float32)[None, :])[0]  # ranks < 2**24: exact
    if not x.any():
        return np.full(len(earlier), np.nan)
    unit = earlier.rank_unit if ranks else earlier.unit
    # einsum, not BLAS: no thread pool (multi-threaded sgemv was 15x slower on a busy 2-core host).
    abs_r = np.abs(np.einsum("ij,j->i", unit, x.astype(np.float32)).astype(np.float64))
    unsure = np.flatnonzero(np.abs(abs_r - threshold) <= _screen_tolerance(earlier.n_rows))
    abs_r[unsure] = np.abs(exact_pearson(predictions, earlier, unsure, ranks=ranks))
    abs_r[earlier.sorted_values[:, 0] == earlier.sorted_values[:, -1]] = np.nan  # constant rows
    return abs_r


@dataclass(frozen=True, eq=False)
class KsScreen:
    """Bounds of the KS statistic of one upload against every earlier submission.

    All in counts (the statistic is ``count / n``, see ``ks``): ``lower`` is ``|#x - #e|`` at the
    sketch points, real data points, so it never exceeds the statistic. Between consecutive sketch
    points both empirical CDFs are monotone, so ``widest[:, j]`` bounds ``|#x - #e|`` over gap j
    and ``upper`` is the largest of them.
    """

    sorted_predictions: np.ndarray  # (n,) float32
    x_right: np.ndarray  # (m, q) count of upload values <= each sketch point
    widest: np.ndarray  # (m, q + 1) bound of |#x - #e| over each gap between sketch points
    lower: np.ndarray  # (m,) statistic >= lower
    upper: np.ndarray  # (m,) statistic <= upper


def ks_screen(predictions: np.ndarray, earlier: EarlierSubmissions) -> KsScreen:
    """Sort the upload once and bound its KS statistic with every earlier submission."""
    xs = np.sort(np.asarray(predictions, dtype=np.float32))
    n = xs.size
    m, q = earlier.sketch_values.shape
    # #x <= each sketch point: place each x among the sorted points (x <= point j exactly when fewer
    # than j + 1 points are below x), then count cumulatively. n searches with sorted keys plus one
    # pass over the m q points; ~6x faster than merging both runs with a stable sort.
    below = np.searchsorted(earlier.sketch_sorted, xs, side="left")
    counts = np.cumsum(np.bincount(below, minlength=m * q + 1))[: m * q]
    x_right = np.empty(m * q, dtype=np.int64)
    x_right[earlier.sketch_order] = counts
    x_right = x_right.reshape(m, q)
    lower = np.max(np.abs(x_right - earlier.sketch_right), axis=1, initial=0) / n
    zeros = np.zeros((m, 1), dtype=np.int64)
    full = np.full((m, 1), n, dtype=np.int64)
    x_at = np.hstack([zeros, x_right, full])  # #x <= t at -inf, the sketch points, +inf
    e_at = np.hstack([zeros, earlier.sketch_right, full])  # #e <= t
    e_below = np.hstack([earlier.sketch_left, full])  # #e < t at the upper end of each gap
    # Gap j is [t_j-1, t_j): #x <= t lies in [x_at[j], x_at[j+1]], #e <= t in [e_at[j], e_below[j]].
    widest = np.maximum(x_at[:, 1:] - e_at[:, :-1], e_below - x_at[:, :-1])
    upper = np.max(widest, axis=1) / n
    return KsScreen(xs, x_right, widest, lower, upper)


def _concat_ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Indices of all ranges [starts[i], stops[i]) concatenated, without a Python loop."""
    lengths = np.maximum(stops - starts, 0)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = starts - np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.repeat(shift, lengths) + np.arange(total)


def refine_ks(screen: KsScreen, earlier: EarlierSubmissions, row: int, level: float) -> float:
    """The exact KS statistic with earlier ``row`` if it is >= ``level``, else a value below ``level``.

    Evaluates the CDFs only at the data points of gaps whose bound reaches ``level`` (the
    maximum, if it is that large, lies in one of them), so it costs a fraction of a full pass.
    With ``level <= screen.lower[row]`` the result is always exact.
    """
    xs = screen.sorted_predictions
    es = earlier.sorted_values[row]
    n = xs.size
    gaps = np.flatnonzero(screen.widest[row] / n >= level)
    e_bounds = np.concatenate([[0], earlier.sketch_left[row], [n]])  # #e < t_j-1: first e index of gap j
    x_bounds = np.concatenate([[0], screen.x_right[row], [n]])  # #x <= t_j-1 (x equal to t_j-1: see e)
    points = np.concatenate(
        [
            es[_concat_ranges(e_bounds[gaps], e_bounds[gaps + 1])],
            xs[_concat_ranges(x_bounds[gaps], x_bounds[gaps + 1])],
        ]
    )
    lower = float(screen.lower[row])
    if points.size == 0:
        return lower
    diff = np.searchsorted(xs, points, side="right") - np.searchsorted(es, points, side="right")
    return max(lower, int(np.max(np.abs(diff))) / n)


def ks_against(screen: KsScreen, earlier: EarlierSubmissions, rule: OriginalityRule) -> np.ndarray:
    """Per earlier submission a KS value that compares with both thresholds exactly as the true one.

    Where the bounds decide, the upper bound (below a threshold) or the lower bound (above both);
    where they straddle a threshold, ``refine_ks`` at that threshold.
    """
    lower, upper = screen.lower, screen.upper
    result = np.where(upper <= rule.similar_ks_statistic, upper, lower)
    straddles_duplicate = (lower < rule.duplicate_ks_statistic) & (upper >= rule.duplicate_ks_statistic)
    straddles_similar = (lower <= rule.similar_ks_statistic) & (upper > rule.similar_ks_statistic)
    for row in np.flatnonzero(straddles_duplicate | straddles_similar):
        level = rule.duplicate_ks_statistic if straddles_duplicate[row] else rule.similar_ks_statistic
        result[row] = refine_ks(screen, earlier, int(row), level)
    return result


def most_correlated(
    predictions: np.ndarray, earlier: EarlierSubmissions, abs_r: np.ndarray, *, ranks: bool = False
) -> tuple[int, float] | None:
    """The earlier submission with the largest exact |r| and its r (None if all are undefined).

    ``abs_r`` may be the float32 screen: every row within twice its error of the top is recomputed.
    """
    if np.isnan(abs_r).all():
        return None
    top = float(np.nanmax(abs_r))
    rows = np.flatnonzero(abs_r >= top - 2 * _screen_tolerance(earlier.n_rows))
    exact = exact_pearson(predictions, earlier, rows, ranks=ranks)
    best = int(np.nanargmax(np.abs(exact)))
    return int(rows[best]), float(exact[best])


def closest_by_ks(screen: KsScreen, earlier: EarlierSubmissions) -> tuple[int, float]:
    """The earlier submission with the smallest exact KS statistic (lowest index on ties) and it.

    Branch and bound: only rows whose lower bound is below every upper bound can be the closest;
    they are refined in order of their lower bounds until no lower bound can beat the best.
    """
    candidates = np.flatnonzero(screen.lower <= screen.upper.min())
    candidates = candidates[np.argsort(screen.lower[candidates], kind="stable")]
    best_row, best = -1, np.inf
    for row in candidates:
        if screen.lower[row] > best:
            break
        value = refine_ks(screen, earlier, int(row), float(screen.lower[row]))
        if value < best or (value == best and row < best_row):
            best_row, best = int(row), value
    return best_row, best


def check_originality(
    predictions: np.ndarray,
    earlier: EarlierSubmissions,
    rule: OriginalityRule | None = None,
    *,
    exclude: np.ndarray | None = None,
) -> OriginalityResult:
    """Apply the rule to aligned predictions against all earlier submissions at once.

    Passes in order: Pearson, then Spearman (unless its threshold is 1.0), then the 2017 KS pass
    (only with ``rule.ks``). ``exclude`` (bool per earlier submission) leaves some out, e.g. the
    earlier versions of the uploader's own model. Masking is free, so a service can keep one
    ``EarlierSubmissions`` per round instead of rebuilding one per uploader.
    """
    rule = rule or OriginalityRule()
    x = np.asarray(predictions, dtype=np.float32)
    included = np.ones(len(earlier), dtype=bool) if exclude is None else ~np.asarray(exclude, dtype=bool)
    if included.shape != (len(earlier),):
        raise InvalidArgument(f"exclude has {included.size} flags for {len(earlier)} earlier submissions")
    compared = int(included.sum())
    if compared == 0:
        return OriginalityResult(
            True, "original: no earlier submission of the round to compare with", 0, 0, None, None, None, None
        )
    if x.shape != (earlier.n_rows,):
        raise InvalidArgument(f"predictions have shape {x.shape}; the round has {earlier.n_rows} rows")
    if not np.isfinite(x).all():
        raise InvalidArgument("originality needs finite predictions (run the upload checks first)")
    labels = earlier.labels

    # Correlation pass (first, as in 2017).
    abs_r = abs_pearson_against(x, earlier, rule.max_abs_pearson)
    abs_r[~included] = np.nan
    found = most_correlated(x, earlier, abs_r)
    r_label, r_value = (labels[found[0]], found[1]) if found else (None, None)
    if found and bool(np.any(abs_r > rule.max_abs_pearson)):
        reason = (
            f"not original: |Pearson| {abs(found[1]):.4f} with earlier submission {r_label} (> {rule.max_abs_pearson})"
        )
        return OriginalityResult(False, reason, compared, 0, r_value, r_label, None, None, decided_by="pearson")

    # Rank correlation pass: what CORR and MMC see, so a monotone transform of a copy is a copy.
    rho_label: str | None = None
    rho_value: float | None = None
    if rule.max_abs_rank_correlation < 1.0:
        x_ranks = average_ranks(x)[0]  # ranked once, compared with every earlier submission's ranks
        abs_rho = abs_pearson_against(x_ranks, earlier, rule.max_abs_rank_correlation, ranks=True)
        abs_rho[~included] = np.nan
        found_rho = most_correlated(x_ranks, earlier, abs_rho, ranks=True)
        if found_rho:
            rho_label, rho_value = labels[found_rho[0]], found_rho[1]
        if found_rho and bool(np.any(abs_rho > rule.max_abs_rank_correlation)):
            reason = (
                f"not original: |Spearman| {abs(rho_value or 0.0):.4f} with earlier submission {rho_label} "
                f"(> {rule.max_abs_rank_correlation})"
            )
            return OriginalityResult(
                False, reason, compared, 0, r_value, r_label, None, None, rho_value, rho_label, decided_by="spearman"
            )
    r_text = f"highest |Pearson| {abs(r_value or 0.0):.4f} ({r_label})" if found else "Pearson undefined"
    if rho_value is not None:
        r_text += f", highest |Spearman| {abs(rho_value):.4f} ({rho_label})"
    if not rule.ks:
        reason = f"original: {r_text} of {compared} earlier submissions"
        return OriginalityResult(True, reason, compared, 0, r_value, r_label, None, None, rho_value, rho_label)

    # KS pass; an excluded submission gets bounds of +inf: never similar, never the closest.
    screen = ks_screen(x, earlier)
    if not included.all():
        screen = replace(
            screen,
            lower=np.where(included, screen.lower, np.inf),
            upper=np.where(included, screen.upper, np.inf),
        )
    ks = ks_against(screen, earlier, rule)
    duplicate = ks < rule.duplicate_ks_statistic
    similar_count = int(np.count_nonzero(ks <= rule.similar_ks_statistic))
    closest, ks_value = closest_by_ks(screen, earlier)
    ks_label = labels[closest]

    def result(original: bool, reason: str, decided_by: str = "") -> OriginalityResult:
        return OriginalityResult(
            original,
            reason,
            compared,
            similar_count,
            r_value,
            r_label,
            ks_value,
            ks_label,
            rank_correlation=rho_value,
            rank_label=rho_label,
            decided_by=decided_by,
        )

    if duplicate.any():
        reason = (
            f"not original: KS {ks_value:.5f} with earlier submission {ks_label} "
            f"(< {rule.duplicate_ks_statistic}: a duplicate)"
        )
        return result(False, reason, decided_by="ks")
    if similar_count >= rule.similar_submissions_limit:
        reason = (
            f"not original: KS {ks_value:.5f} with earlier submission {ks_label} "
            f"(<= {rule.similar_ks_statistic}); {similar_count} similar earlier submission(s), "
            f"{rule.similar_submissions_limit} make it unoriginal"
        )
        return result(False, reason, decided_by="ks")
    reason = f"original: {r_text}, lowest KS {ks_value:.5f} ({ks_label}) of {compared} earlier submissions"
    return result(True, reason)
