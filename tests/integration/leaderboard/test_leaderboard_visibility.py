"""What anonymous readers may see of rounds that submissions knows: the open round's Ladder board,
and nothing of a round that is closed, resolved or scored but not published."""

from __future__ import annotations

import grpc
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from tests.integration.conftest import md
from tests.integration.submissions.conftest import SMALL

T = "lbvis"


def ref(number: int) -> common_pb2.RoundRef:
    return common_pb2.RoundRef(tournament_id=T, round_number=number)


async def expect(code, call, contains=""):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    assert contains.lower() in (info.value.details() or "").lower(), info.value.details()
    return info.value


@pytest.fixture(scope="module")
async def opened(subs, keys):
    await subs.CreateTournament(
        sub_pb.CreateTournamentRequest(
            request_id="t-lbvis",
            tournament_id=T,
            display_name="Visibility",
            target_kind=common_pb2.TARGET_KIND_BINARY,
            network=common_pb2.BITCOIN_NETWORK_BITCOINLIB_TEST,
        ),
        metadata=md(keys.operator),
    )
    resp = await subs.OpenRound(
        sub_pb.OpenRoundRequest(request_id="lbvis-open-1", tournament_id=T, generated=SMALL), metadata=md(keys.operator)
    )
    return resp.round


async def test_open_round_shows_the_ladder_board(lb, services, opened):
    state = await services["leaderboard"].ctx.extras["open_rounds"].refresh(T)
    assert state.round_number == 1
    board = await lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(0)))  # anonymous
    assert board.source == pb.SCORE_SOURCE_VALIDATION and board.round.round_number == 1
    assert board.metric == common_pb2.METRIC_LOGLOSS and not board.round_info.HasField("publish_time")
    same = await lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(1)))
    assert same.source == pb.SCORE_SOURCE_VALIDATION
    rounds = await lb.ListRounds(pb.ListRoundsRequest(tournament_id=T))
    assert [(r.round.round_number, r.source) for r in rounds.rounds] == [(1, pb.SCORE_SOURCE_VALIDATION)]
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(1), metric=common_pb2.METRIC_MMC)),
        "Logloss",
    )


async def test_closed_unpublished_round_is_invisible(lb, subs, keys, services, opened):
    await subs.CloseRound(
        sub_pb.CloseRoundRequest(request_id="lbvis-close-1", round=ref(1)), metadata=md(keys.operator)
    )
    state = await services["leaderboard"].ctx.extras["open_rounds"].refresh(T)
    assert state.round_number is None
    closed = await expect(
        grpc.StatusCode.NOT_FOUND,
        lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(1))),
        "neither open nor published",
    )
    missing = await expect(
        grpc.StatusCode.NOT_FOUND,
        lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(9))),
        "neither open nor published",
    )
    # a closed round and one that never existed look alike to readers
    assert closed.details().replace("round 1", "round N") == missing.details().replace("round 9", "round N")
    await expect(grpc.StatusCode.NOT_FOUND, lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(0))))
    assert (await lb.ListRounds(pb.ListRoundsRequest(tournament_id=T))).rounds == []
    await expect(grpc.StatusCode.NOT_FOUND, lb.GetReputation(pb.GetReputationRequest(tournament_id=T)))
    # an authenticated participant sees no more than an anonymous reader
    await expect(
        grpc.StatusCode.NOT_FOUND,
        lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(1)), metadata=md(keys.participant)),
    )
    # and the operator cannot publish before scoring
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        lb.PublishRound(pb.PublishRoundRequest(request_id="lbvis-pub-1", round=ref(1)), metadata=md(keys.operator)),
        "score it first",
    )
