"""The leaderboard service: published rounds, rankings, reputation and model profiles.

Reads come from memory (:mod:`services.leaderboard.usecases.cache`, :mod:`services.leaderboard.usecases.open_rounds`);
the cache is loaded when the database is ready and a background task records payouts of rounds
published before they were paid.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from pathlib import Path

import grpc

from crowdquant.leaderboard.v1 import leaderboard_service_pb2_grpc
from services.leaderboard.api.access import LEADERBOARD, LEADERBOARD_SCOPES
from services.leaderboard.api.leaderboard import SCHEMA, SERVICE, LeaderboardServicer
from services.leaderboard.peers import Peers
from services.leaderboard.settings import LeaderboardSettings
from services.leaderboard.usecases.cache import BoardCache
from services.leaderboard.usecases.directory import Directory
from services.leaderboard.usecases.open_rounds import OpenRounds
from services.leaderboard.usecases.payouts import refresh_payouts
from services.leaderboard.usecases.reads import Reader
from shared.logging import get_logger
from shared.rpc import remote_auth
from shared.rpc.server import ServiceContext, ServiceSpec

log = get_logger("crowdquant.leaderboard")


async def _payouts_loop(ctx: ServiceContext, cache: BoardCache, peers: Peers, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            if await refresh_payouts(ctx.database, peers):
                await cache.reload()
        except Exception as exc:
            log.warning("payouts not refreshed", error=f"{type(exc).__name__}: {exc}"[:200])


async def register(server: grpc.aio.Server, ctx: ServiceContext):
    settings = ctx.settings
    if not isinstance(settings, LeaderboardSettings):
        settings = LeaderboardSettings(**settings.model_dump())
    peers = Peers(settings, deadline=settings.peer_deadline_seconds)
    directory = Directory(peers, min_interval=max(settings.open_round_refresh_seconds, 1.0))
    cache = BoardCache(ctx.database, check_seconds=settings.cache_check_seconds)
    open_rounds = OpenRounds(ctx.database, peers, directory, refresh_seconds=settings.open_round_refresh_seconds)
    reader = Reader(
        cache,
        open_rounds,
        settings.weight_scheme,
        settings.reputation_window_rounds,
        default_tournament=settings.default_tournament,
        guess_tournament=peers.busiest_tournament,
    )
    servicer = LeaderboardServicer(ctx.database, cache, reader, peers, directory)
    leaderboard_service_pb2_grpc.add_LeaderboardServiceServicer_to_server(servicer, server)
    ctx.policy.add(SERVICE, LEADERBOARD, LEADERBOARD_SCOPES)
    tasks: list[asyncio.Task[None]] = []

    async def ready() -> None:
        await cache.reload()
        await open_rounds.load_snapshots()
        if settings.payouts_refresh_seconds > 0 and not tasks:
            tasks.append(
                asyncio.create_task(
                    _payouts_loop(ctx, cache, peers, settings.payouts_refresh_seconds), name="leaderboard-payouts"
                )
            )

    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        await peers.close()

    ctx.on_ready.append(ready)
    ctx.on_stop.append(stop)
    ctx.extras.update(leaderboard=servicer, cache=cache, open_rounds=open_rounds, peers=peers)
    return [SERVICE], remote_auth.attach(ctx)


SPEC = ServiceSpec(
    name="leaderboard", schema=SCHEMA, migrations=Path(__file__).parent / "store" / "migrations", register=register
)
