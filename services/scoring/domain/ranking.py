"""Tie-kept ranks and their gaussianisation for a block of submissions, without per-model Python loops.

numerai-tools ranks each column with ``pandas.Series.rank(method="average")``, maps the ranks to
``(rank - 0.5) / n`` and applies the normal inverse CDF. Done per column with pandas this dominates the
cost of scoring. Here a block of submissions (rows of a 2-D array) is sorted at once (two radix passes
over the float32 bit patterns, see ``_sort_float32``) and every metric is computed *in sorted order*,
so ranks are never scattered back.

Why it is cheap: a tie group occupying the 0-based sorted positions ``[start, end)`` has the average
1-based rank ``(start + 1 + end) / 2``, so ``(rank - 0.5) / n == (start + end) / (2 n)``. The integer
``code = start + end`` (1 .. 2n-1) indexes a table of the only ``2n - 1`` values a gaussianised rank
can take, so ``scipy.special.ndtri`` runs once per row count, not once per element. Without ties the
code at sorted position ``j`` is ``2 j + 1``: every submission shares one fixed vector of gaussianised
values and only its sort order differs. Ties (common: float32 values in [0, 1] collide) are handled
as a sparse correction at the few sorted positions that belong to a tie group.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

__all__ = [
    "GaussTables",
    "SortedBlock",
    "gauss_tables",
    "gaussian_rank",
    "gaussian_rank_block",
    "sort_block",
]

_SIGN_BIT = np.uint32(0x80000000)
_LOW_16 = np.uint32(0xFFFF)
_SHIFT_16 = np.uint32(16)
_CACHE_ELEMENTS = 1 << 17
"""Values sorted per radix pass: ~2 MB of keys, orders and digits, about what a core's L2 holds."""
_Ints = NDArray[np.intp]


def _frozen(array: NDArray) -> NDArray:
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class GaussTables:
    """Lookup tables for one row count ``n``, indexed by ``code = 2 * average_rank - 1``.

    ``gauss[code]`` is ``ndtri(code / (2 n))`` (numerai-tools' ``gaussian(tie_kept_rank(x))``) and
    ``gauss_pow[code]`` is ``sign(g) |g| ** 1.5`` (its ``power(..., 1.5)``); index 0 is unused.
    The ``*_untied`` vectors hold the values at sorted positions ``j`` when there are no ties
    (code ``2 j + 1``); ``gauss_pow_untied_sum`` and ``gauss_pow_untied_sumsq`` are their first two
    moments, which a Pearson correlation needs and which are therefore shared by all submissions.
    """

    n: int
    gauss: NDArray[np.float64]
    gauss_pow: NDArray[np.float64]
    gauss_untied: NDArray[np.float64]
    gauss_pow_untied: NDArray[np.float64]
    codes_untied: NDArray[np.float64]
    gauss_pow_untied_sum: float
    gauss_pow_untied_sumsq: float


@lru_cache(maxsize=512)
def gauss_tables(n: int) -> GaussTables:
    """Build (and cache: eras repeat the same sizes) the tables for ``n`` ranked values."""
    if n < 1:
        raise ValueError("gauss_tables needs at least one row")
    codes = np.arange(2 * n, dtype=np.float64)
    gauss = ndtri(codes / (2 * n))
    gauss[0] = 0.0
    gauss_pow = np.sign(gauss) * np.abs(gauss) ** 1.5
    untied = slice(1, 2 * n, 2)
    pow_untied = gauss_pow[untied].copy()
    return GaussTables(
        n=n,
        gauss=_frozen(gauss),
        gauss_pow=_frozen(gauss_pow),
        gauss_untied=_frozen(gauss[untied].copy()),
        gauss_pow_untied=_frozen(pow_untied),
        codes_untied=_frozen(codes[untied].copy()),
        gauss_pow_untied_sum=float(pow_untied.sum()),
        gauss_pow_untied_sumsq=float(pow_untied @ pow_untied),
    )


@dataclass(frozen=True)
class SortedBlock:
    """A block of submissions sorted row by row, with its tie groups in sparse form.

    ``order[i, j]`` is the column holding the j-th smallest value of submission i. The sorted
    positions that belong to a tie group are listed as (``tie_rows``, ``tie_cols``) with their
    ``tie_codes`` (``2 * average_rank - 1``); every other position has code ``2 j + 1``.
    """

    order: NDArray[np.intp]
    tie_rows: NDArray[np.intp]
    tie_cols: NDArray[np.intp]
    tie_codes: NDArray[np.intp]

    @property
    def shape(self) -> tuple[int, int]:
        return self.order.shape[0], self.order.shape[1]


def _sortable_bits(block: NDArray[np.float32]) -> NDArray[np.uint32]:
    """uint32 keys that order like the float32 values; ``+ 0.0`` folds -0.0 into +0.0 so that, as in
    pandas, the two zeros tie."""
    ints = (block + np.float32(0.0)).view(np.int32)
    keys = (ints >> 31).view(np.uint32)  # all ones for negative values, else zero
    keys |= _SIGN_BIT
    keys ^= ints.view(np.uint32)  # negatives: every bit inverted; others: sign bit set
    return keys


def _sort_float32(block: NDArray[np.float32]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Sort float32 rows exactly with two radix passes instead of a comparison sort.

    numpy's stable argsort of 16-bit integers is a radix sort (linear time). Sorting by the low 16
    bits of the order-preserving key, then stably by the high 16 bits, orders every row by its full
    32-bit key, about twice as fast as ``argsort`` as long as the working set stays in cache, so rows
    are sorted ``_CACHE_ELEMENTS`` values at a time whatever the block size. Row offsets turn the
    per-row orders into flat positions for 1-D ``take``, much faster than ``take_along_axis``.
    Equal sorted keys are ties.
    """
    rows, n = block.shape
    order = np.empty((rows, n), dtype=np.intp)
    same_as_next = np.empty((rows, max(n - 1, 0)), dtype=bool)
    step = max(1, _CACHE_ELEMENTS // max(n, 1))
    for start in range(0, rows, step):
        part = slice(start, start + step)
        keys = _sortable_bits(block[part])
        offsets = (np.arange(keys.shape[0], dtype=np.intp) * n)[:, np.newaxis]
        low_order = np.argsort((keys & _LOW_16).astype(np.uint16), axis=1, kind="stable")
        low_order += offsets
        high = (keys >> _SHIFT_16).astype(np.uint16).ravel().take(low_order)
        by_high = np.argsort(high, axis=1, kind="stable")
        by_high += offsets
        flat = low_order.ravel().take(by_high)
        sorted_keys = keys.ravel().take(flat)
        np.subtract(flat, offsets, out=order[part])
        np.equal(sorted_keys[:, 1:], sorted_keys[:, :-1], out=same_as_next[part])
    return order, same_as_next


def _sort_generic(block: NDArray[np.floating]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Sort rows of any other float dtype with argsort (the radix key covers 32-bit values only)."""
    order = np.argsort(block, axis=1)
    values = np.take_along_axis(block, order, axis=1)
    return order.astype(np.intp, copy=False), values[:, 1:] == values[:, :-1]


def _tie_groups(same_as_next: NDArray[np.bool_]) -> tuple[_Ints, _Ints, _Ints]:
    """Rows, columns and codes of the sorted positions that belong to a tie group.

    Works only on those positions (usually a few dozen per submission): a position starts a group
    unless it equals its left neighbour; a group's code is ``2 * start + length``.
    """
    rows, width = same_as_next.shape[0], same_as_next.shape[1] + 1
    in_group = np.zeros((rows, width), dtype=bool)
    in_group[:, 1:] = same_as_next
    in_group[:, :-1] |= same_as_next
    flat = np.flatnonzero(in_group)
    if flat.size == 0:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty, empty
    tie_rows, tie_cols = np.divmod(flat, width)
    starts = np.ones(flat.size, dtype=bool)
    inner = tie_cols > 0
    starts[inner] = ~same_as_next[tie_rows[inner], tie_cols[inner] - 1]
    group = np.cumsum(starts) - 1
    lengths = np.bincount(group)
    codes = 2 * tie_cols[starts] + lengths
    return tie_rows, tie_cols, codes[group]


def sort_block(block: NDArray[np.floating]) -> SortedBlock:
    """Sort every row of ``block`` (no NaN allowed) and locate its tie groups."""
    if block.dtype == np.float32:
        order, same_as_next = _sort_float32(np.ascontiguousarray(block))
    else:
        order, same_as_next = _sort_generic(block)
    tie_rows, tie_cols, tie_codes = _tie_groups(same_as_next)
    return SortedBlock(order=order, tie_rows=tie_rows, tie_cols=tie_cols, tie_codes=tie_codes)


def gaussian_rank_block(block: NDArray[np.floating], out: NDArray[np.floating] | None = None) -> NDArray:
    """``gaussian(tie_kept_rank(x))`` of numerai-tools for every row of ``block``, in the original order.

    Used where the values themselves are needed (meta model, stacker features), not only dot
    products. ``out`` (same shape; float32 is enough for stacker features) avoids an extra allocation.
    """
    rows, n = block.shape
    tables = gauss_tables(n)
    ranked = sort_block(block)
    result = out if out is not None else np.empty((rows, n), dtype=np.float64)
    values = np.broadcast_to(tables.gauss_untied.astype(result.dtype), (rows, n)).copy()
    values[ranked.tie_rows, ranked.tie_cols] = tables.gauss[ranked.tie_codes]
    flat = ranked.order + (np.arange(rows, dtype=np.intp) * n)[:, np.newaxis]
    if result.flags.c_contiguous:
        result.ravel()[flat] = values  # scatter by flat position: faster than put_along_axis
    else:
        np.put_along_axis(result, ranked.order, values, axis=1)
    return result


def gaussian_rank(values: NDArray[np.floating]) -> NDArray[np.float64]:
    """``gaussian(tie_kept_rank(x))`` of one vector (e.g. the meta model), in its original order."""
    return gaussian_rank_block(np.asarray(values)[np.newaxis, :])[0]
