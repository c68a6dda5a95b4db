"""The read model: every published round, indexed so that each read is a lookup and a slice.

A catalog is built from the database on start and after each publish, then never changed: a
reader holding one sees a consistent picture, and a rebuild swaps in a new catalog at once.
Ranked boards and reputation boards are computed on first use and kept with the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.leaderboard.domain.boards import RankedBoard, RoundBoard, page_bounds
from services.leaderboard.domain.metrics import Metric
from services.leaderboard.domain.ranking import SortKey, competition_ranks, sort_key
from services.leaderboard.domain.reputation import reputations


@dataclass(frozen=True)
class ReputationStanding:
    rank: int
    model_id: str
    model_display_name: str
    participant_display_name: str
    value: float
    rounds_counted: int
    stake_satoshis: int


@dataclass(frozen=True)
class ReputationBoard:
    """The rolling board of one tournament and metric over a window of published rounds."""

    metric: Metric
    window: int
    weights: tuple[float, ...]
    rounds: tuple[RoundBoard, ...]
    standings: tuple[ReputationStanding, ...]
    keys: tuple[SortKey, ...]

    def page(self, after: SortKey | None, size: int) -> tuple[Sequence[ReputationStanding], SortKey | None]:
        start, end = page_bounds(self.keys, after, size)
        return self.standings[start:end], (self.keys[end - 1] if end < len(self.keys) else None)


class Catalog:
    """Published rounds by tournament and number, with the derived boards readers ask for."""

    def __init__(self, rounds: Iterable[RoundBoard], version: int, built_at: datetime) -> None:
        self.version = version
        self.built_at = built_at
        self._rounds: dict[str, dict[int, RoundBoard]] = {}
        latest: RoundBoard | None = None
        for board in rounds:
            self._rounds.setdefault(board.tournament_id, {})[board.round_number] = board
            if latest is None or (board.published_at or built_at) >= (latest.published_at or built_at):
                latest = board
        self.latest_tournament = latest.tournament_id if latest else None
        self._by_model: dict[str, list[RoundBoard]] = {}
        for t in sorted(self._rounds):
            for n in sorted(self._rounds[t]):
                for result in self._rounds[t][n].results:
                    self._by_model.setdefault(result.model_id, []).append(self._rounds[t][n])
        self._ranked: dict[tuple[str, int, Metric], RankedBoard] = {}
        self._reputation: dict[tuple[str, Metric, tuple[float, ...]], ReputationBoard] = {}

    def tournaments(self) -> list[str]:
        return sorted(self._rounds)

    def round(self, tournament_id: str, number: int) -> RoundBoard | None:
        return self._rounds.get(tournament_id, {}).get(number)

    def rounds_of(self, tournament_id: str) -> list[RoundBoard]:
        """Published rounds of a tournament, newest first."""
        boards = self._rounds.get(tournament_id, {})
        return [boards[n] for n in sorted(boards, reverse=True)]

    def ranked(self, tournament_id: str, number: int, metric: Metric | None = None) -> RankedBoard:
        board = self._rounds[tournament_id][number]
        chosen = board.require_metric(metric)
        key = (tournament_id, number, chosen)
        if key not in self._ranked:
            self._ranked[key] = RankedBoard(board, chosen)
        return self._ranked[key]

    def history(self, model_id: str) -> list[RoundBoard]:
        """Published rounds in which the model has a result, oldest first."""
        return list(self._by_model.get(model_id, ()))

    def reputation(self, tournament_id: str, metric: Metric, weights: tuple[float, ...]) -> ReputationBoard:
        """The reputation board over the last ``len(weights)`` published rounds of a tournament."""
        key = (tournament_id, metric, weights)
        if key in self._reputation:
            return self._reputation[key]
        window = tuple(b for b in self.rounds_of(tournament_id) if metric in b.metrics)[: len(weights)]
        values = [{r.model_id: r.score(metric).value for r in b.results} for b in window]
        reps = reputations(values, weights[: len(window)])
        newest = {}
        for board in reversed(window):  # oldest first, so the newest result wins
            for result in board.results:
                newest[result.model_id] = result
        keyed = sorted((sort_key(v, metric.higher_is_better, m), m) for m, (v, _) in reps.items())
        keys = tuple(k for k, _ in keyed)
        standings = tuple(
            ReputationStanding(
                rank,
                m,
                newest[m].model_display_name,
                newest[m].participant_display_name,
                reps[m][0],
                reps[m][1],
                newest[m].stake_satoshis,
            )
            for rank, (_, m) in zip(competition_ranks(keys), keyed, strict=True)
        )
        applied = weights[: len(window)]
        total = sum(applied)
        shown = tuple(w / total for w in applied) if total > 0 else ()
        reputation = ReputationBoard(metric, len(weights), shown, window, standings, keys)
        self._reputation[key] = reputation
        return reputation
