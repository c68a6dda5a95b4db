"""The in-memory read cache: a :class:`Catalog` of every published round, swapped whole.

Readers take ``cache.catalog`` and never wait: when the last version check is older than
``check_seconds``, the property starts one in the background and returns the current catalog.
The check reads the single ``published_version`` counter (cheap), and only when it moved does the
cache reload the rounds and swap in a new catalog; so a replica notices a publish made by another
replica within about ``check_seconds``, and the replica that published reloads at once.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

from services.leaderboard.domain.catalog import Catalog
from services.leaderboard.store import rounds as repo
from shared.db import Database
from shared.logging import get_logger

log = get_logger("crowdquant.leaderboard.cache")


class BoardCache:
    def __init__(
        self, database: Database, check_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db = database
        self._clock = clock
        self.check_seconds = check_seconds
        self._catalog = Catalog([], version=-1, built_at=datetime.now(UTC))
        self._last_check = -math.inf
        self._check: asyncio.Task[bool] | None = None
        self._lock = asyncio.Lock()
        self.reloads = 0
        self.checks = 0

    @property
    def catalog(self) -> Catalog:
        """The current catalog, at once; a due version check runs in the background."""
        if self._clock() - self._last_check >= self.check_seconds and (self._check is None or self._check.done()):
            self._last_check = self._clock()
            self._check = asyncio.create_task(self._background_sync(), name="leaderboard-cache-check")
        return self._catalog

    @property
    def pending_check(self) -> asyncio.Task[bool] | None:
        """The background version check started last (tests await it instead of sleeping)."""
        return self._check

    async def _background_sync(self) -> bool:
        try:
            return await self.sync()
        except Exception as exc:
            log.warning("cache check failed; serving the previous boards", error=f"{type(exc).__name__}: {exc}"[:200])
            return False

    async def sync(self) -> bool:
        """Reload when the database's publish counter differs from the catalog's; True if reloaded."""
        self.checks += 1
        async with self._db.connect() as conn:
            version = await repo.published_version(conn)
        if version == self._catalog.version:
            return False
        await self.reload()
        return True

    async def reload(self) -> Catalog:
        """Build a new catalog from the database and swap it in (one reload at a time)."""
        async with self._lock:
            async with self._db.connect() as conn:
                version = await repo.published_version(conn)
                boards = await repo.load_rounds(conn)
            catalog = Catalog(boards, version=version, built_at=datetime.now(UTC))
            for tournament in catalog.tournaments():
                latest = catalog.rounds_of(tournament)[0]
                catalog.ranked(tournament, latest.round_number)
            self._catalog = catalog
            self._last_check = self._clock()
            self.reloads += 1
        log.info("boards reloaded", version=version, rounds=len(boards))
        return catalog
