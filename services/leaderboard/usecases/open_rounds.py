"""The open round of each tournament and its Ladder board, kept fresh in the background.

While a round is open its public board is scoring's Ladder-protected validation scores. Readers
get the last known board at once; when it is older than ``refresh_seconds`` one background fetch
(submissions for the latest round's state, scoring for the board) replaces it. Each board fetched
is also saved as a snapshot, so a restarted replica, or one that cannot reach scoring, still shows
the last board it had instead of nothing. Fetch failures are logged and never reach readers.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from services.leaderboard.api.convert import METRIC_FROM_PROTO
from services.leaderboard.domain.boards import ModelResult, RankedBoard, RoundBoard, Source
from services.leaderboard.domain.metrics import Metric, Score, main_metric
from services.leaderboard.peers import Peers
from services.leaderboard.store import validation as repo
from services.leaderboard.usecases.directory import Directory
from shared.db import Database
from shared.errors import DomainError, NotFound
from shared.logging import get_logger

log = get_logger("crowdquant.leaderboard.open_rounds")


@dataclass(frozen=True)
class OpenState:
    """A tournament's open round (None when its latest round is not open or not known)."""

    round_number: int | None
    board: RankedBoard | None
    fetched_at: datetime


def content_hash(board: RoundBoard) -> str:
    digest = hashlib.sha256(board.main_metric.value.encode())
    for r in sorted(board.results, key=lambda r: r.model_id):
        digest.update(
            f"\n{r.model_id}\t{r.model_display_name}\t{r.participant_display_name}\t"
            f"{r.score(board.main_metric).value!r}".encode()
        )
    return digest.hexdigest()


class OpenRounds:
    def __init__(
        self,
        database: Database,
        peers: Peers,
        directory: Directory,
        refresh_seconds: float = 5.0,
        first_wait_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = database
        self._peers = peers
        self._directory = directory
        self._clock = clock
        self.refresh_seconds = refresh_seconds
        self.first_wait_seconds = first_wait_seconds
        self._states: dict[str, tuple[OpenState, float]] = {}
        self._inflight: dict[str, asyncio.Task[OpenState]] = {}
        self._snapshots: dict[tuple[str, int], tuple[RoundBoard, datetime]] = {}

    async def load_snapshots(self) -> None:
        async with self._db.connect() as conn:
            for board, fetched_at in await repo.load_snapshots(conn):
                self._snapshots[(board.tournament_id, board.round_number)] = (board, fetched_at)

    def known_states(self) -> list[OpenState]:
        """Every tournament's state known now, without fetching (profiles use it)."""
        return [state for state, _ in self._states.values()]

    async def state(self, tournament_id: str) -> OpenState:
        hit = self._states.get(tournament_id)
        if hit is not None:
            if self._clock() - hit[1] >= self.refresh_seconds:
                self._refresh(tournament_id)
            return hit[0]
        try:
            return await asyncio.wait_for(asyncio.shield(self._refresh(tournament_id)), self.first_wait_seconds)
        except TimeoutError:
            return OpenState(None, None, datetime.now(UTC))

    async def refresh(self, tournament_id: str) -> OpenState:
        """Fetch anew and wait for it (tests use it so as not to depend on timing)."""
        running = self._inflight.get(tournament_id)
        if running is not None and not running.done():
            await running
        task = asyncio.create_task(self._fetch(tournament_id), name=f"open-round-{tournament_id}")
        self._inflight[tournament_id] = task
        return await task

    def _refresh(self, tournament_id: str) -> asyncio.Task[OpenState]:
        task = self._inflight.get(tournament_id)
        if task is None or task.done():
            task = asyncio.create_task(self._fetch(tournament_id), name=f"open-round-{tournament_id}")
            self._inflight[tournament_id] = task
        return task

    async def _fetch(self, tournament_id: str) -> OpenState:
        previous = self._states.get(tournament_id)
        try:
            state = await self._fetch_state(tournament_id)
        except Exception as exc:
            log.warning(
                "open round not refreshed", tournament=tournament_id, error=f"{type(exc).__name__}: {exc}"[:200]
            )
            state = previous[0] if previous else OpenState(None, None, datetime.now(UTC))
        self._states[tournament_id] = (state, self._clock())
        return state

    async def _fetch_state(self, tournament_id: str) -> OpenState:
        try:
            status = await self._peers.round_status(tournament_id, 0)
        except NotFound:
            return OpenState(None, None, datetime.now(UTC))
        if status.state != "open":
            return OpenState(None, None, datetime.now(UTC))
        board, fetched_at = await self._board(tournament_id, status.number)
        return OpenState(status.number, RankedBoard(board), fetched_at)

    async def _board(self, tournament_id: str, number: int) -> tuple[RoundBoard, datetime]:
        try:
            scores = await self._peers.public_scores(tournament_id, number)
        except DomainError as exc:
            log.warning(
                "validation scores not available; showing the last snapshot",
                tournament=tournament_id,
                round=number,
                error=exc.message[:200],
            )
            snapshot = self._snapshots.get((tournament_id, number))
            if snapshot is not None:
                return snapshot
            metric = await self._main_metric(tournament_id)
            return RoundBoard(tournament_id, number, Source.VALIDATION, metric, (metric,), ()), datetime.now(UTC)
        metric = METRIC_FROM_PROTO.get(scores[0].metric) if scores else None
        metric = metric or await self._main_metric(tournament_id)
        names = await self._directory.names(tournament_id, [s.model.model_id for s in scores])
        results = tuple(
            ModelResult(
                s.model.model_id,
                s.model.display_name or names[s.model.model_id][0],
                names[s.model.model_id][1],
                {metric: Score(s.displayed_value)},
            )
            for s in scores
        )
        board = RoundBoard(tournament_id, number, Source.VALIDATION, metric, (metric,), results)
        fetched_at = datetime.now(UTC)
        async with self._db.transaction() as conn:
            await repo.save_snapshot(conn, board, content_hash(board), fetched_at)
        self._snapshots[(tournament_id, number)] = (board, fetched_at)
        return board, fetched_at

    async def _main_metric(self, tournament_id: str) -> Metric:
        try:
            return main_metric(await self._peers.is_graded(tournament_id))
        except DomainError:
            return Metric.CORR
