"""Display names of models and participants, read from submissions and cached.

The leaderboard shows names, never participant ids. Names rarely change, so they are cached and
re-read only when an unknown model shows up (at most once per ``min_interval`` seconds), or when a
publish asks for fresh ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

from services.leaderboard.peers import ModelName, Peers


class Directory:
    def __init__(self, peers: Peers, min_interval: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._peers = peers
        self._clock = clock
        self.min_interval = min_interval
        self._models: dict[str, ModelName] = {}
        self._participants: dict[str, str] = {}
        self._last_read: dict[str, float] = {}

    async def _read(self, tournament_id: str) -> None:
        self._models.update(await self._peers.model_names(tournament_id))
        self._participants.update(await self._peers.participant_names())
        self._last_read[tournament_id] = self._clock()

    async def names(
        self, tournament_id: str, model_ids: Iterable[str], *, fresh: bool = False
    ) -> dict[str, tuple[str, str]]:
        """(model display name, participant display name) of each model; unknown ones get their id."""
        wanted = list(model_ids)
        missing = any(m not in self._models for m in wanted)
        due = self._clock() - self._last_read.get(tournament_id, -math.inf) >= self.min_interval
        if fresh or (missing and due):
            await self._read(tournament_id)
        out = {}
        for model_id in wanted:
            known = self._models.get(model_id)
            if known is None:
                out[model_id] = (model_id, "")
            else:
                out[model_id] = (known.display_name, self._participants.get(known.participant_id, ""))
        return out
