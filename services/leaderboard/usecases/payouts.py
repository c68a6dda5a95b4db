"""Late payouts: a round is published before it is paid, so its allocation is fetched afterwards.

Each pass asks payouts for the allocation of published rounds whose payouts are not known yet and
records the amounts once they exist; the publish counter moves only when something changed.
"""

from __future__ import annotations

from services.leaderboard.peers import Peers
from services.leaderboard.store import rounds as repo
from shared.db import Database
from shared.logging import get_logger

log = get_logger("crowdquant.leaderboard.payouts")


async def refresh_payouts(database: Database, peers: Peers, limit: int = 20) -> int:
    """One pass; returns how many rounds got their payouts."""
    async with database.connect() as conn:
        pending = await repo.rounds_awaiting_payouts(conn, limit)
    updated = 0
    for tournament_id, number in pending:
        amounts = await peers.allocation(tournament_id, number)
        if amounts is None:
            continue
        async with database.transaction() as conn:
            if await repo.set_payouts(conn, tournament_id, number, amounts):
                await repo.bump_version(conn)
                updated += 1
                log.info("payouts recorded", tournament=tournament_id, round=number, models=len(amounts))
    return updated
