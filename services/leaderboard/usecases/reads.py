"""The read use cases: which board a request means, and the rolling and per-model views.

Every read is served from memory: published rounds from the catalog, the open round from the
open-round tracker. A round that is neither published nor open (closed, resolved, scored but not
published) has no public board: NOT_FOUND, the same answer as for a round that does not exist,
so readers learn nothing about unpublished results.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from services.leaderboard.domain.boards import ModelResult, RankedBoard, RoundBoard
from services.leaderboard.domain.catalog import ReputationBoard
from services.leaderboard.domain.errors import BoardNotFound, ModelNotFound
from services.leaderboard.domain.metrics import Metric
from services.leaderboard.domain.reputation import WeightScheme
from services.leaderboard.usecases.cache import BoardCache
from services.leaderboard.usecases.open_rounds import OpenRounds
from shared.errors import InvalidArgument


@dataclass(frozen=True)
class RoundResultView:
    board: RoundBoard
    result: ModelResult
    rank: int


@dataclass(frozen=True)
class Profile:
    model_id: str
    model_display_name: str
    participant_display_name: str
    tournament_id: str
    rounds: tuple[RoundResultView, ...]  # oldest first

    @property
    def total_payout_satoshis(self) -> int:
        return sum(r.result.payout_satoshis for r in self.rounds)


class Reader:
    """Reads for the servicer; ``guess_tournament`` names a tournament while none is published yet
    (asked at most every ``guess_seconds``)."""

    def __init__(
        self,
        cache: BoardCache,
        open_rounds: OpenRounds,
        scheme: WeightScheme,
        default_window: int,
        default_tournament: str = "",
        guess_tournament: Callable[[], Awaitable[str | None]] | None = None,
        guess_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache = cache
        self.open_rounds = open_rounds
        self.scheme = scheme
        self.default_window = default_window
        self.default_tournament = default_tournament
        self._guess_tournament = guess_tournament
        self._guess_seconds = guess_seconds
        self._clock = clock
        self._guessed: tuple[str | None, float] = (None, -math.inf)
        self._guess_lock = asyncio.Lock()

    async def _guess(self) -> str | None:
        async with self._guess_lock:
            value, at = self._guessed
            if self._guess_tournament is not None and self._clock() - at >= self._guess_seconds:
                value = await self._guess_tournament()
                self._guessed = (value, self._clock())
            return value

    async def tournament(self, tournament_id: str) -> str:
        """The tournament a request means: its own, the configured default, or the latest published."""
        chosen = tournament_id or self.default_tournament or self.cache.catalog.latest_tournament
        if not chosen:
            chosen = await self._guess()
        if not chosen:
            raise BoardNotFound("no tournament has a public leaderboard yet", metadata={"field": "tournament_id"})
        return chosen

    async def board(self, tournament_id: str, number: int, metric: Metric | None) -> tuple[RankedBoard, datetime]:
        """The ranked public board of a round (0 = the latest: the open one if any) and its build time."""
        if number < 0:
            raise InvalidArgument(
                f"round.round_number must be >= 0 (got {number})", metadata={"field": "round.round_number"}
            )
        t = await self.tournament(tournament_id)
        catalog = self.cache.catalog
        if number > 0 and catalog.round(t, number) is not None:
            return catalog.ranked(t, number, metric), catalog.built_at
        published = catalog.rounds_of(t)
        latest_published = published[0].round_number if published else 0
        state = await self.open_rounds.state(t)
        open_number = state.round_number if state.board is not None else None
        if (
            state.board is not None
            and open_number is not None
            and (number == open_number or (number == 0 and open_number > latest_published))
        ):
            state.board.board.require_metric(metric)
            return state.board, state.fetched_at
        if number == 0 and latest_published:
            return catalog.ranked(t, latest_published, metric), catalog.built_at
        what = f"round {number} of tournament {t!r}" if number else f"tournament {t!r}"
        raise BoardNotFound(
            f"{what} has no public leaderboard: it is neither open nor published",
            metadata={"tournament_id": t, "round_number": str(number)},
        )

    async def rounds(self, tournament_id: str) -> list[RoundBoard]:
        """The open round (if newer than every published one) and the published rounds, newest first."""
        t = await self.tournament(tournament_id)
        published = self.cache.catalog.rounds_of(t)
        state = await self.open_rounds.state(t)
        if (
            state.board is not None
            and state.round_number is not None
            and (not published or state.round_number > published[0].round_number)
        ):
            return [state.board.board, *published]
        return published

    def window(self, requested: int) -> tuple[float, ...]:
        if requested < 0:
            raise InvalidArgument(
                f"window_rounds must not be negative (got {requested})", metadata={"field": "window_rounds"}
            )
        return self.scheme.weights(requested or self.default_window)

    async def reputation(self, tournament_id: str, metric: Metric | None, window: int) -> ReputationBoard:
        t = await self.tournament(tournament_id)
        catalog = self.cache.catalog
        published = catalog.rounds_of(t)
        if not published:
            raise BoardNotFound(f"tournament {t!r} has no published rounds yet", metadata={"tournament_id": t})
        chosen = published[0].require_metric(metric)
        return catalog.reputation(t, chosen, self.window(window))

    def profile(self, model_id: str) -> Profile:
        if not model_id:
            raise InvalidArgument("model_id is required", metadata={"field": "model_id"})
        catalog = self.cache.catalog
        views = []
        for board in catalog.history(model_id):
            ranked = catalog.ranked(board.tournament_id, board.round_number)
            result = next(r for r in board.results if r.model_id == model_id)
            views.append(RoundResultView(board, result, ranked.rank_of(model_id)))
        for state in self.open_rounds.known_states():
            if state.board is None:
                continue
            rank = state.board.rank_of(model_id)
            if rank:
                result = next(r for r in state.board.board.results if r.model_id == model_id)
                views.append(RoundResultView(state.board.board, result, rank))
        if not views:
            raise ModelNotFound(f"model {model_id!r} has no public results", metadata={"model_id": model_id})
        latest = views[-1].result
        return Profile(
            model_id,
            latest.model_display_name,
            latest.participant_display_name,
            views[-1].board.tournament_id,
            tuple(views),
        )
