"""Reading scored rounds (runs, each model's scores, the meta model) and recording publication.

Stored results are the published records (bytes the api layer decodes); the privacy rule
(``domain.privacy``) decides who may read them before the leaderboard publishes the round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.scoring.domain.privacy import Reader, may_read
from services.scoring.store import scores as repo
from shared.db import Database
from shared.errors import NotFound, PermissionDenied
from shared.rounds import RoundKey

PRIVATE = "another participant's scores are private until the leaderboard publishes the round"


@dataclass(frozen=True)
class ScoresPage:
    records: list[bytes]
    last_key: list[Any] | None  # sort key of the last row when more follow
    total: int


class Results:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def _check(self, conn: Any, key: RoundKey, reader: Reader, owner: str | None) -> None:
        published = reader.is_participant and await repo.is_published(conn, key.tournament_id, key.number)
        if not may_read(reader, owner, published):
            raise PermissionDenied(PRIVATE)

    async def model_scores(self, key: RoundKey, model_id: str, reader: Reader) -> bytes:
        async with self.db.connect() as conn:
            row = await repo.get_scores(conn, key.tournament_id, key.number, model_id)
            if row is None:
                raise NotFound(
                    f"no scores for model {model_id!r} in round {key.number}", metadata={"model_id": model_id}
                )
            await self._check(conn, key, reader, row.participant_id)
        return bytes(row.scores)

    async def _scored(self, conn: Any, key: RoundKey, reader: Reader) -> None:
        await self._check(conn, key, reader, None)
        if await repo.get_meta(conn, key.tournament_id, key.number) is None:
            raise NotFound(f"round {key.number} of {key.tournament_id!r} has not been scored")

    async def default_order(self, key: RoundKey, reader: Reader) -> str:
        """The board's default metric: logloss where the tournament has it, else CORR."""
        async with self.db.connect() as conn:
            await self._scored(conn, key, reader)
            first = await repo.list_scores(conn, key.tournament_id, key.number, "corr", None, 1)
        return "logloss" if first and first[0].sort_logloss is not None else "corr"

    async def round_scores(self, key: RoundKey, metric: str, after: Any, size: int, reader: Reader) -> ScoresPage:
        """One page of the round's scores, best first by ``metric``."""
        async with self.db.connect() as conn:
            await self._scored(conn, key, reader)
            rows = await repo.list_scores(conn, key.tournament_id, key.number, metric, after, size + 1)
            total = await repo.count_scores(conn, key.tournament_id, key.number)
        last = [rows[size - 1].k0, rows[size - 1].k1, rows[size - 1].model_id] if len(rows) > size else None
        return ScoresPage([bytes(r.scores) for r in rows[:size]], last, total)

    async def meta_model(self, key: RoundKey, reader: Reader) -> bytes:
        async with self.db.connect() as conn:
            await self._check(conn, key, reader, None)
            row = await repo.get_meta(conn, key.tournament_id, key.number)
        if row is None:
            raise NotFound(f"round {key.number} has not been scored")
        return bytes(row.meta_model)

    async def mark_published(self, key: RoundKey) -> Any:
        """Record that the leaderboard published the round (idempotent); NOT_FOUND before it is scored."""
        async with self.db.transaction() as conn:
            if await repo.get_meta(conn, key.tournament_id, key.number) is None:
                raise NotFound(f"round {key.number} of {key.tournament_id!r} has not been scored")
            return await repo.mark_published(conn, key.tournament_id, key.number)
