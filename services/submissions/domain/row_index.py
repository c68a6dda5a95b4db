"""The rows of a round and a vectorised lookup from row id to row position.

Why not a dict or ``np.searchsorted`` on the strings: an upload of 36,072 ids must be checked in
a few milliseconds, and both cost ~4-9 ms per upload in CPython/numpy (string comparisons,
cache misses). Instead each id (a numpy unicode string, i.e. fixed-width UCS-4 code points) is
hashed to 64 bits with vectorised integer arithmetic and looked up in an open-addressing table
(linear probing) built once per round. The table is built with a hash seed under which all of the
round's ids hash differently, so a lookup can stop at the first hash match, and every match is
then confirmed by comparing the strings: a foreign id whose hash collides is reported unknown,
never mapped to a wrong row. About 2 ms for a full upload given as a numpy array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from crowdquant.formats.errors import list_examples
from shared.errors import InvalidArgument

_SEEDS = (0x9E3779B97F4A7C15, 0xD1B54A32D192ED03, 0x8CB92BA72F3D8DD7, 0xCA5A826395121157)
_MULTIPLIER = np.uint64(0xBF58476D1CE4E5B9)
_SHIFT = np.uint64(31)


def as_id_array(ids: Sequence[str] | np.ndarray) -> np.ndarray:
    """Ids as a 1-D numpy unicode array (numpy's fixed-width ``<U`` strings)."""
    array = np.asarray(ids)
    if array.ndim != 1:
        raise InvalidArgument(f"ids must be a flat sequence of strings, got shape {array.shape}")
    if array.dtype.kind == "U":
        return array
    if array.dtype.kind == "S":
        return np.char.decode(array, "utf-8")
    if array.size == 0:
        return np.zeros(0, dtype="<U1")
    return array.astype(str)


def _code_points(ids: np.ndarray, width: int) -> np.ndarray:
    """(n, width) uint32 code points, zero padded, of a unicode array whose strings fit ``width``."""
    if len(ids) == 0:
        return np.zeros((0, width), dtype=np.uint32)
    if ids.dtype.itemsize // 4 < width:
        ids = ids.astype(f"<U{width}")
    points = np.ascontiguousarray(ids).view("<u4").reshape(len(ids), -1)
    return points[:, :width]


def _hash(points: np.ndarray, seed: int) -> np.ndarray:
    """64-bit mix of each row of code points (splitmix-style multiply/xor-shift per column)."""
    h = np.full(points.shape[0], seed, dtype=np.uint64)
    for column in range(points.shape[1]):
        h ^= points[:, column].astype(np.uint64)
        h *= _MULTIPLIER
        h ^= h >> _SHIFT
    return h


@dataclass(frozen=True, eq=False)
class RoundRows:
    """A round's tournament row ids in row order (validation then live) and the lookup table.

    Build it once per round (``from_ids``) and reuse it for every upload of that round.
    """

    ids: np.ndarray  # <U, row order
    width: int  # code points per id in ``ids``
    seed: int  # hash seed under which the round's ids have distinct hashes
    table_row: np.ndarray  # int32 row position per slot, -1 = empty
    table_hash: np.ndarray  # uint64 hash per slot
    bits: int  # log2 of the table size
    max_probe: int

    @classmethod
    def from_ids(cls, ids: Sequence[str] | np.ndarray) -> RoundRows:
        """Index ``ids``; they must be unique and non-empty strings (a round's universe)."""
        ids = as_id_array(ids)
        if ids.size == 0:
            raise InvalidArgument("a round needs at least one row id")
        unique, first, counts = np.unique(ids, return_index=True, return_counts=True)
        if (counts > 1).any():
            repeated = unique[counts > 1]
            raise InvalidArgument(
                f"round row ids must be unique; {repeated.size} ids repeat: "
                + list_examples([repr(str(i)) for i in repeated[:10]], repeated.size)
            )
        if unique[0] == "":
            raise InvalidArgument(f"round row ids must not be empty (row {int(first[0])})")
        width = max(1, ids.dtype.itemsize // 4)
        points = _code_points(ids, width)
        for seed in _SEEDS:
            hashes = _hash(points, seed)
            if len(np.unique(hashes)) == len(hashes):
                break
        else:  # four independent 64-bit collisions among a round's ids: practically impossible
            raise InvalidArgument("round row ids could not be indexed (hash collisions); rename a few ids")
        bits = max(4, int(len(ids) * 2 - 1).bit_length())  # load factor <= 1/2: short probes
        size = 1 << bits
        table_row = np.full(size, -1, dtype=np.int32)
        table_hash = np.zeros(size, dtype=np.uint64)
        home = (hashes >> np.uint64(64 - bits)).astype(np.int64)
        pending = np.arange(len(ids))
        probe = 0
        # Insert in rounds: at round p every unplaced id tries home + p; among ids wanting the same
        # free slot the first wins. An id only reaches home + p after home..home+p-1 were taken,
        # which is the invariant linear-probing lookups rely on.
        while pending.size:
            slots = (home[pending] + probe) & (size - 1)
            free = table_row[slots] == -1
            claim_slots, winners = np.unique(slots[free], return_index=True)
            rows = pending[free][winners]
            table_row[claim_slots] = rows
            table_hash[claim_slots] = hashes[rows]
            placed = np.zeros(len(pending), dtype=bool)
            placed[np.flatnonzero(free)[winners]] = True
            pending = pending[~placed]
            probe += 1 if pending.size else 0
        return cls(
            ids=ids,
            width=width,
            seed=seed,
            table_row=table_row,
            table_hash=table_hash,
            bits=bits,
            max_probe=probe,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Row position of each id (int64), -1 where the id is not a row of this round."""
        result = np.full(len(ids), -1, dtype=np.int64)
        if ids.size == 0:
            return result
        points = np.ascontiguousarray(ids).view("<u4").reshape(len(ids), -1)
        candidates = np.arange(len(ids))
        if points.shape[1] > self.width:  # longer than every round id: can't be one
            candidates = candidates[~points[:, self.width :].any(axis=1)]
        hashes = _hash(_code_points(ids[candidates], self.width), self.seed)
        mask = len(self.table_row) - 1
        home = (hashes >> np.uint64(64 - self.bits)).astype(np.int64)
        for probe in range(self.max_probe + 1):
            if not candidates.size:
                break
            slots = (home + probe) & mask
            rows = self.table_row[slots]
            hit = self.table_hash[slots] == hashes
            hit &= rows >= 0
            result[candidates[hit]] = rows[hit]
            keep = ~hit & (rows >= 0)  # an empty slot ends the probe sequence: unknown id
            candidates, hashes, home = candidates[keep], hashes[keep], home[keep]
        found = np.flatnonzero(result >= 0)
        # Round ids hash distinctly, so a hash match names the only possible row; confirm the string.
        result[found[self.ids[result[found]] != ids[found]]] = -1
        return result
