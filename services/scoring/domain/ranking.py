"""Tie-kept ranks and their gaussianisation for a block of submissions, without per-model Python loops.

numerai-tools ranks each column with ``pandas.Series.rank(method="average")``, maps the ranks to
``(rank - 0.5) / n`` and applies the normal inverse CDF. Done per column with pandas this dominates the
cost of scoring. Here a block of submissions (rows of a 2-D array) is sorted at once (a SIMD sort of
64-bit keys packing each value with its column, see ``_sort_float32``) and every metric is computed *in sorted order*,
so ranks are never scattered back.

Why it is cheap: a tie group occupying the 0-based sorted positions ``[start, end)`` has the average
1-based rank ``(start + 1 + end) / 2``, so ``(rank - 0.5) / n == (start + end) / (2 n)``. The integer
``code = start + end`` (1 .. 2n-1) indexes a table of the only ``2n - 1`` values a gaussianised rank
can take, so ``scipy.special.ndtri`` runs once per row count, not once per element. Without ties the
code at sorted position ``j`` is ``2 j + 1``: every submission shares one fixed vector of gaussianised
values and only its sort order differs. A few ties (float32 values in [0, 1] collide now and then)
are handled as a sparse correction at the sorted positions that belong to a tie group. Many ties
(participants round their predictions: to 3 decimals nearly every value is tied) switch a block to
dense codes: every run of equal sorted values is found with one ``flatnonzero`` over the block and its
code spread over its positions with one ``repeat``; a weighted sum is then a table lookup and a dot
product per row, a few vectorised passes however many values tie.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

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
_LOW_32 = np.uint64(0xFFFFFFFF)
_SHIFT_32 = np.uint64(32)
_LITTLE_ENDIAN = sys.byteorder == "little"
_CACHE_ELEMENTS = 1 << 17
"""Values sorted at a time: ~1 MB of 64-bit keys plus their orders, about what a core's L2 holds."""
_Ints = NDArray[np.intp]
_F64 = NDArray[np.float64]
_DENSE_WHEN_TIED_SHARE = 1 / 8
"""A block whose adjacent sorted values are equal this often or more gets dense codes, not sparse ties:
the sparse correction costs several indexed passes per tied value, dense codes a few per value; they
cost the same at about 1 in 8 (measured on 36,072 rows), predictions rounded to 5 decimals have 1 in 5."""


def _frozen(array: NDArray[Any]) -> NDArray[Any]:
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
    """A block of submissions sorted row by row, with its tie groups.

    ``order[i, j]`` is the column holding the j-th smallest value of submission i. Ties come in one of
    two forms. Sparse (few ties): the sorted positions that belong to a tie group are listed as
    (``tie_rows``, ``tie_cols``) with their ``tie_codes`` (``2 * average_rank - 1``); every other
    position has code ``2 j + 1``. Dense (many ties, ``codes`` is not None): the code of every sorted
    position.
    """

    order: NDArray[np.intp]
    tie_rows: NDArray[np.intp]
    tie_cols: NDArray[np.intp]
    tie_codes: NDArray[np.intp]
    codes: NDArray[np.intp] | None = None
    """Dense form: the code of every sorted position, shape (rows, n)."""

    @property
    def shape(self) -> tuple[int, int]:
        return self.order.shape[0], self.order.shape[1]

    def dot(self, vector: _F64, untied: _F64, table: _F64) -> _F64:
        """For every submission, the sum over sorted positions j of ``table[code_j] * vector[order_j]``;
        ``untied`` is ``table`` at the codes of an untied row (``table[1::2]``)."""
        gathered = np.take(vector, self.order)
        if self.codes is not None:
            return np.einsum("ij,ij->i", gathered, table[self.codes])
        # einsum, not BLAS: tiny matrix-vector products handed to a threaded BLAS leave its worker
        # threads spinning and slow the next sort down on small machines.
        result = np.einsum("ij,j->i", gathered, untied)
        if self.tie_rows.size:
            delta = (table[self.tie_codes] - untied[self.tie_cols]) * gathered[self.tie_rows, self.tie_cols]
            result += np.bincount(self.tie_rows, weights=delta, minlength=result.size)
        return result

    def moments(self, table: _F64, untied: _F64, untied_sum: float, untied_sumsq: float) -> tuple[_F64, _F64]:
        """For every submission, the sum and the sum of squares of ``table[code_j]`` over its positions."""
        rows = self.shape[0]
        if self.codes is not None:
            values = table[self.codes]
            return values.sum(axis=1), np.einsum("ij,ij->i", values, values)
        total, squares = np.full(rows, untied_sum), np.full(rows, untied_sumsq)
        if self.tie_rows.size:
            tied, plain = table[self.tie_codes], untied[self.tie_cols]
            total += np.bincount(self.tie_rows, weights=tied - plain, minlength=rows)
            squares += np.bincount(self.tie_rows, weights=tied**2 - plain**2, minlength=rows)
        return total, squares

    def sorted_values(self, table: _F64, untied: _F64, dtype: np.dtype) -> NDArray[Any]:
        """``table[code_j]`` at every sorted position, as a (rows, n) array of ``dtype``."""
        rows, n = self.shape
        if self.codes is not None:
            return table.astype(dtype)[self.codes]
        values = np.broadcast_to(untied.astype(dtype), (rows, n)).copy()
        values[self.tie_rows, self.tie_cols] = table[self.tie_codes]
        return values


def _sortable_bits(block: NDArray[np.float32]) -> NDArray[np.uint32]:
    """uint32 keys that order like the float32 values; ``+ 0.0`` folds -0.0 into +0.0 so that, as in
    pandas, the two zeros tie."""
    ints = (block + np.float32(0.0)).view(np.int32)
    keys = (ints >> 31).view(np.uint32)  # all ones for negative values, else zero
    keys |= _SIGN_BIT
    keys ^= ints.view(np.uint32)  # negatives: every bit inverted; others: sign bit set
    return keys


def _sort_float32(block: NDArray[np.float32]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Sort float32 rows exactly, and with their orders, by sorting values rather than indices.

    numpy sorts plain values with vectorised (SIMD) code, several times faster than it argsorts.
    So each value becomes one 64-bit key: its order-preserving 32-bit pattern above its column.
    Sorting the keys sorts the values (equal values by column) and carries each one's column along:
    the low halves of the sorted keys are the order, equal high halves of neighbours are the ties.
    Rows are sorted ``_CACHE_ELEMENTS`` values at a time so the keys stay in a core's cache.
    """
    rows, n = block.shape
    order = np.empty((rows, n), dtype=np.intp)
    same_as_next = np.empty((rows, max(n - 1, 0)), dtype=bool)
    columns = np.arange(n, dtype=np.uint64)
    step = max(1, _CACHE_ELEMENTS // max(n, 1))
    for start in range(0, rows, step):
        part = slice(start, start + step)
        keys = _sortable_bits(block[part]).astype(np.uint64)
        keys <<= _SHIFT_32
        keys |= columns
        keys.sort(axis=1)
        if _LITTLE_ENDIAN:  # the two 32-bit halves of each key, without a pass over the keys
            halves = keys.view(np.uint32)
            low, high = halves[:, 0::2], halves[:, 1::2]
        else:
            low, high = keys & _LOW_32, keys >> _SHIFT_32
        order[part] = low
        np.equal(high[:, 1:], high[:, :-1], out=same_as_next[part])
    return order, same_as_next


def _sort_generic(block: NDArray[np.floating]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Sort rows of any other float dtype with argsort (the packed key holds 32-bit values only)."""
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


def _dense_codes(same_as_next: NDArray[np.bool_]) -> NDArray[np.intp]:
    """The code of every sorted position, from the runs of equal values (tied or not).

    A run starts where a value differs from its left neighbour (or a row begins); all its positions
    share the code ``2 * start + length``, ``start`` being its column. One ``flatnonzero`` finds the
    runs, one ``repeat`` spreads their codes.
    """
    rows, width = same_as_next.shape[0], same_as_next.shape[1] + 1
    new_run = np.empty((rows, width), dtype=bool)
    new_run[:, 0] = True
    np.logical_not(same_as_next, out=new_run[:, 1:])
    starts = np.flatnonzero(new_run)
    lengths = np.empty_like(starts)
    np.subtract(starts[1:], starts[:-1], out=lengths[:-1])
    lengths[-1] = rows * width - starts[-1]
    row_offsets = np.repeat(np.arange(rows, dtype=np.intp) * width, np.count_nonzero(new_run, axis=1))
    codes = starts - row_offsets  # the start column
    codes *= 2
    codes += lengths
    return np.repeat(codes, lengths).reshape(rows, width)


def sort_block(block: NDArray[np.floating]) -> SortedBlock:
    """Sort every row of ``block`` (no NaN allowed) and locate its tie groups."""
    if block.dtype == np.float32:
        order, same_as_next = _sort_float32(np.ascontiguousarray(block))
    else:
        order, same_as_next = _sort_generic(block)
    if same_as_next.size and np.count_nonzero(same_as_next) >= _DENSE_WHEN_TIED_SHARE * same_as_next.size:
        empty = np.empty(0, dtype=np.intp)
        return SortedBlock(order, empty, empty, empty, codes=_dense_codes(same_as_next))
    tie_rows, tie_cols, tie_codes = _tie_groups(same_as_next)
    return SortedBlock(order=order, tie_rows=tie_rows, tie_cols=tie_cols, tie_codes=tie_codes)


def gaussian_rank_block(block: NDArray[np.floating], out: NDArray[np.floating] | None = None) -> NDArray[Any]:
    """``gaussian(tie_kept_rank(x))`` of numerai-tools for every row of ``block``, in the original order.

    Used where the values themselves are needed (meta model, stacker features), not only dot
    products. ``out`` (same shape; float32 is enough for stacker features) avoids an extra allocation.
    """
    rows, n = block.shape
    tables = gauss_tables(n)
    ranked = sort_block(block)
    result = out if out is not None else np.empty((rows, n), dtype=np.float64)
    values = ranked.sorted_values(tables.gauss, tables.gauss_untied, result.dtype)
    flat = ranked.order + (np.arange(rows, dtype=np.intp) * n)[:, np.newaxis]
    if result.flags.c_contiguous:
        result.ravel()[flat] = values  # scatter by flat position: faster than put_along_axis
    else:
        np.put_along_axis(result, ranked.order, values, axis=1)
    return result


def gaussian_rank(values: NDArray[np.floating]) -> NDArray[np.float64]:
    """``gaussian(tie_kept_rank(x))`` of one vector (e.g. the meta model), in its original order."""
    return gaussian_rank_block(np.asarray(values)[np.newaxis, :])[0]
