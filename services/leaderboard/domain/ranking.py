"""Ordering and competition ranking ("1, 2, 2, 4"), with a total order usable for keyset pages.

Equal values share a rank and the next distinct value skips the shared places, as in sports
tables; this keeps a rank meaning "how many models did strictly better, plus one". Undefined
(NaN) values sort last and share one rank. Among equal values models are ordered by id, so the
order is total and a page token (the last key served) always splits the board in the same place.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: (undefined?, value oriented so that smaller is better, model id)
SortKey = tuple[int, float, str]


def sort_key(value: float, higher_is_better: bool, model_id: str) -> SortKey:
    if math.isnan(value):
        return (1, 0.0, model_id)
    return (0, -value if higher_is_better else value, model_id)


def competition_ranks(keys: Sequence[SortKey]) -> list[int]:
    """Ranks of keys already in sorted order: equal values share the rank of the first of them."""
    ranks: list[int] = []
    for i, key in enumerate(keys):
        if i and key[:2] == keys[i - 1][:2]:
            ranks.append(ranks[-1])
        else:
            ranks.append(i + 1)
    return ranks
