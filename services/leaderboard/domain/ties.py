"""Statistical ties: neighbours whose confidence intervals overlap.

Two models whose bootstrap intervals overlap cannot be told apart at the tournament's confidence
level, so the board flags them rather than pretending the order is meaningful. Their ranks stay
distinct (ranks follow the means); the flags only say "this gap is noise". An entry without an
interval (the Ladder's validation scores) is never flagged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Interval = tuple[float, float]


def intervals_overlap(a: Interval, b: Interval) -> bool:
    """Closed intervals ``[low, high]`` share at least one point; any NaN bound means no interval."""
    if any(math.isnan(x) for x in (*a, *b)):
        return False
    return max(a[0], b[0]) <= min(a[1], b[1])


def neighbour_ties(intervals: Sequence[Interval]) -> list[tuple[bool, bool]]:
    """For each entry of an ordered board: (tied with the previous entry, tied with the next one)."""
    links = [intervals_overlap(intervals[i], intervals[i + 1]) for i in range(len(intervals) - 1)]
    return [(i > 0 and links[i - 1], i < len(links) and links[i]) for i in range(len(intervals))]
