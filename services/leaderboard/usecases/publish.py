"""Publishing a scored round: collect its scores from scoring (and names from submissions, stakes
and payouts from payouts when it has them), then store the public board in one transaction.

``store_round`` is the write half on its own: tests and the benchmark seed boards through it, so
they exercise the same storage, ranking and version bump as a real publish.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from services.leaderboard.api.convert import scores_from_proto
from services.leaderboard.domain.boards import ModelResult, Payout, RankedBoard, RoundBoard, Source
from services.leaderboard.domain.metrics import METRIC_ORDER, main_metric
from services.leaderboard.peers import Peers
from services.leaderboard.store import rounds as repo
from services.leaderboard.usecases.directory import Directory
from shared.errors import FailedPrecondition, InvalidArgument
from shared.logging import get_logger

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

log = get_logger("crowdquant.leaderboard.publish")
PUBLISHABLE = ("scored", "paid")


def check_round(tournament_id: str, number: int) -> None:
    if not tournament_id:
        raise InvalidArgument("round.tournament_id is required", metadata={"field": "round.tournament_id"})
    if number <= 0:
        raise InvalidArgument(
            f"round.round_number must be a published round's number, >= 1 (got {number})",
            metadata={"field": "round.round_number"},
        )


async def collect_round(peers: Peers, directory: Directory, tournament_id: str, number: int) -> RoundBoard:
    """The round's public board as its peers know it now (no database access)."""
    status = await peers.round_status(tournament_id, number)
    if status.state not in PUBLISHABLE:
        raise FailedPrecondition(
            f"round {number} of {tournament_id} is {status.state.upper()}: only a SCORED (or PAID) round can be "
            "published; score it first",
            reason="ROUND_NOT_SCORED",
            metadata={"state": status.state},
        )
    graded = await peers.is_graded(tournament_id)
    scores = await peers.round_scores(tournament_id, number)
    meta = await peers.meta_model(tournament_id, number)
    names = await directory.names(tournament_id, [s.model.model_id for s in scores], fresh=True)
    stakes = await peers.round_stakes(tournament_id, number)
    payouts = await peers.allocation(tournament_id, number)
    results = []
    for s in scores:
        model_id = s.model.model_id
        model_name, participant_name = names[model_id]
        stake = stakes.get(model_id, 0) if stakes is not None else s.stake_satoshis
        payout = (payouts or {}).get(model_id, Payout(0))
        results.append(
            ModelResult(
                model_id,
                s.model.display_name or model_name,
                participant_name,
                scores_from_proto(s),
                stake,
                payout.amount,
                payout.reason,
                payout.detail,
            )
        )
    present = {m for r in results for m in r.scores}
    metrics = tuple(m for m in METRIC_ORDER if m in present)
    main = main_metric(graded)
    if metrics and main not in metrics:
        main = metrics[0]
    return RoundBoard(
        tournament_id=tournament_id,
        round_number=number,
        source=Source.LIVE,
        main_metric=main,
        metrics=metrics or (main,),
        results=tuple(results),
        meta_model=scores_from_proto(meta),
        payouts_known=payouts is not None,
    )


async def store_round(conn: AsyncConnection, board: RoundBoard) -> RoundBoard:
    """Write a published round (replacing an earlier publish of it) and count the change."""
    ranked = RankedBoard(board, board.main_metric)
    ranks = {s.result.model_id: s.rank for s in ranked.standings}
    published_at = await repo.save_round(conn, board, ranks)
    version = await repo.bump_version(conn)
    log.info(
        "round published",
        tournament=board.tournament_id,
        round=board.round_number,
        models=board.model_count,
        version=version,
    )
    return replace(board, published_at=published_at)


async def publish_round(
    conn: AsyncConnection, peers: Peers, directory: Directory, tournament_id: str, number: int
) -> RoundBoard:
    check_round(tournament_id, number)
    board = await collect_round(peers, directory, tournament_id, number)
    return await store_round(conn, board)
