"""LeaderboardService: proto in, a handler or a cached read, proto out. Thin adapter.

Pages are keyset pages over the ranked order (the last key served is in the token, with the
query's filters), so a board that changes between two pages neither skips nor repeats a model.
"""

from __future__ import annotations

from typing import Any

from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as pb
from crowdquant.leaderboard.v1 import leaderboard_service_pb2_grpc as pb_grpc
from services.leaderboard.api.convert import (
    METRIC_TO_PROTO,
    SOURCE_TO_PROTO,
    entry_pb,
    key_to_position,
    metric_from_proto,
    metric_values,
    position_to_key,
    round_pb,
    round_ref,
    zero_payout_pb,
)
from services.leaderboard.peers import Peers
from services.leaderboard.usecases import publish
from services.leaderboard.usecases.cache import BoardCache
from services.leaderboard.usecases.directory import Directory
from services.leaderboard.usecases.reads import Reader
from shared.db import Database
from shared.idempotency import run_once
from shared.pagination import decode_token, encode_token, page_size
from shared.rpc.context import principal
from shared.rpc.convert import timestamp

SCHEMA = "leaderboard"
SERVICE = pb.DESCRIPTOR.services_by_name["LeaderboardService"].full_name
MAX_PAGE = 1000


class LeaderboardServicer(pb_grpc.LeaderboardServiceServicer):
    def __init__(
        self, database: Database, cache: BoardCache, reader: Reader, peers: Peers, directory: Directory
    ) -> None:
        self.db = database
        self.cache = cache
        self.reader = reader
        self.peers = peers
        self.directory = directory

    async def PublishRound(self, request: pb.PublishRoundRequest, context: Any) -> pb.PublishRoundResponse:
        ref = request.round
        publish.check_round(ref.tournament_id, ref.round_number)
        async with self.db.transaction() as conn:

            async def action() -> pb.PublishRoundResponse:
                board = await publish.publish_round(
                    conn, self.peers, self.directory, ref.tournament_id, ref.round_number
                )
                return pb.PublishRoundResponse(round=round_pb(board))

            response = await run_once(
                conn,
                schema=SCHEMA,
                subject=principal().subject,
                rpc="PublishRound",
                request=request,
                response_type=pb.PublishRoundResponse,
                action=action,
            )
        await self.peers.mark_published(ref.tournament_id, ref.round_number)
        await self.cache.reload()
        return response

    async def GetRoundLeaderboard(
        self, request: pb.GetRoundLeaderboardRequest, context: Any
    ) -> pb.GetRoundLeaderboardResponse:
        metric = metric_from_proto(request.metric)
        size = page_size(request.page_size, maximum=MAX_PAGE)
        ranked, built_at = await self.reader.board(request.round.tournament_id, request.round.round_number, metric)
        board = ranked.board
        filters = ["board", board.tournament_id, board.round_number, ranked.metric.value]
        position = decode_token(request.page_token, filters)
        standings, next_key = ranked.page(None if position is None else position_to_key(position), size)
        return pb.GetRoundLeaderboardResponse(
            round=round_ref(board.tournament_id, board.round_number),
            metric=METRIC_TO_PROTO[ranked.metric],
            source=SOURCE_TO_PROTO[board.source],
            entries=[entry_pb(s) for s in standings],
            next_page_token=encode_token(key_to_position(next_key), filters) if next_key else "",
            total_size=len(ranked),
            update_time=timestamp(built_at),
            round_info=round_pb(board),
        )

    async def GetReputation(self, request: pb.GetReputationRequest, context: Any) -> pb.GetReputationResponse:
        metric = metric_from_proto(request.metric)
        size = page_size(request.page_size, maximum=MAX_PAGE)
        rep = await self.reader.reputation(request.tournament_id, metric, request.window_rounds)
        last = rep.rounds[0]
        filters = ["reputation", last.tournament_id, rep.metric.value, rep.window, last.round_number]
        position = decode_token(request.page_token, filters)
        standings, next_key = rep.page(None if position is None else position_to_key(position), size)
        return pb.GetReputationResponse(
            metric=METRIC_TO_PROTO[rep.metric],
            window_rounds=rep.window,
            weights=list(rep.weights),
            last_round=round_ref(last.tournament_id, last.round_number),
            entries=[
                pb.ReputationEntry(
                    rank=s.rank,
                    model_id=s.model_id,
                    model_display_name=s.model_display_name,
                    participant_display_name=s.participant_display_name,
                    reputation=s.value,
                    rounds_counted=s.rounds_counted,
                    stake_satoshis=s.stake_satoshis,
                )
                for s in standings
            ],
            next_page_token=encode_token(key_to_position(next_key), filters) if next_key else "",
            total_size=len(rep.standings),
        )

    async def GetModelProfile(self, request: pb.GetModelProfileRequest, context: Any) -> pb.GetModelProfileResponse:
        profile = self.reader.profile(request.model_id)
        rounds = [
            pb.RoundResult(
                round=round_ref(v.board.tournament_id, v.board.round_number),
                source=SOURCE_TO_PROTO[v.board.source],
                metrics=metric_values(v.result.scores),
                rank=v.rank,
                stake_satoshis=v.result.stake_satoshis,
                payout_satoshis=v.result.payout_satoshis,
                zero_payout=zero_payout_pb(v.result),
            )
            for v in profile.rounds
        ]
        return pb.GetModelProfileResponse(
            profile=pb.ModelProfile(
                model_id=profile.model_id,
                model_display_name=profile.model_display_name,
                participant_display_name=profile.participant_display_name,
                tournament_id=profile.tournament_id,
                rounds=rounds,
                total_payout_satoshis=profile.total_payout_satoshis,
            )
        )

    async def ListRounds(self, request: pb.ListRoundsRequest, context: Any) -> pb.ListRoundsResponse:
        size = page_size(request.page_size, maximum=MAX_PAGE)
        boards = await self.reader.rounds(request.tournament_id)
        tournament = boards[0].tournament_id if boards else request.tournament_id
        filters = ["rounds", tournament]
        before = decode_token(request.page_token, filters)
        if before is not None and not isinstance(before, int):
            before = None
        remaining = [b for b in boards if before is None or b.round_number < before]
        page = remaining[:size]
        token = encode_token(page[-1].round_number, filters) if len(remaining) > size else ""
        return pb.ListRoundsResponse(rounds=[round_pb(b) for b in page], next_page_token=token)
