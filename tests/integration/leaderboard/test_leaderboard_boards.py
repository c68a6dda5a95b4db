"""LeaderboardService over real gRPC and PostgreSQL: ranks with ties, statistical ties, pages,
reputation against hand-computed numbers, profiles, and the cache's reaction to a publish."""

from __future__ import annotations

import grpc
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as pb
from services.leaderboard.domain.boards import Payout
from services.leaderboard.store import rounds as rounds_repo
from services.leaderboard.usecases.cache import BoardCache
from shared.db import Database
from tests.integration.conftest import md
from tests.integration.leaderboard.conftest import NAN, REPUTATION_3, T, live_board, seed


def ref(number: int, tournament: str = T) -> common_pb2.RoundRef:
    return common_pb2.RoundRef(tournament_id=tournament, round_number=number)


async def expect(code, call, contains=""):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    assert contains.lower() in (info.value.details() or "").lower(), info.value.details()
    return info.value


async def test_ranks_share_places_and_flag_statistical_ties(lb, seeded):
    resp = await lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(3)))  # anonymous
    assert resp.source == pb.SCORE_SOURCE_LIVE and resp.metric == common_pb2.METRIC_CORR
    rows = [(e.rank, e.model_id, e.tied_with_previous, e.tied_with_next) for e in resp.entries]
    assert rows == [
        (1, "f", False, False),
        (2, "a", False, True),
        (3, "b", True, True),
        (3, "c", True, True),
        (3, "d", True, False),
        (6, "e", False, False),
    ]
    a = resp.entries[1]
    assert (a.value, a.ci_low, a.ci_high, a.stake_satoshis, a.payout_satoshis) == (0.04, 0.03, 0.05, 5000, 120)
    assert a.model_display_name == "model a" and a.participant_display_name == "owner of a"
    assert {m.metric for m in a.metrics} == {common_pb2.METRIC_CORR, common_pb2.METRIC_MMC}
    assert resp.total_size == 6 and resp.next_page_token == "" and resp.update_time.seconds > 0
    info = resp.round_info
    assert info.main_metric == common_pb2.METRIC_CORR and info.payouts_known and info.model_count == 6
    assert info.total_payout_satoshis == 115 and info.meta_model_metrics[0].value == pytest.approx(0.02)

    by_mmc = await lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(3), metric=common_pb2.METRIC_MMC))
    assert [(e.rank, e.model_id) for e in by_mmc.entries] == [
        (1, "e"),
        (2, "b"),
        (3, "c"),
        (4, "a"),
        (4, "f"),
        (6, "d"),
    ]
    latest = await lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(0)))
    assert latest.round.round_number == 3


async def test_bad_requests_name_the_field(lb, seeded):
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(3), metric=common_pb2.METRIC_AUC)),
        "choose one of CORR, MMC",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(3), page_size=-1)),
        "page_size",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(3), page_token="garbage")),
        "page_token",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(-2))),
        "round_number",
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        lb.GetReputation(pb.GetReputationRequest(tournament_id=T, window_rounds=-1)),
        "window_rounds",
    )


async def test_pages_neither_skip_nor_repeat(lb, services, database_url):
    rows = [(f"p{i:02d}", round((i * 7 % 5) * 0.01, 4), NAN, NAN) for i in range(23)]
    await seed(database_url, live_board("lbpage", 1, rows))
    await services["leaderboard"].ctx.extras["cache"].sync()
    whole = await lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(1, "lbpage"), page_size=100))
    assert len(whole.entries) == 23 and whole.next_page_token == ""
    seen, token, pages = [], "", 0
    while True:
        page = await lb.GetRoundLeaderboard(
            pb.GetRoundLeaderboardRequest(round=ref(1, "lbpage"), page_size=4, page_token=token)
        )
        seen += [(e.rank, e.model_id) for e in page.entries]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 6 and seen == [(e.rank, e.model_id) for e in whole.entries]
    assert len({m for _, m in seen}) == 23
    assert [r for r, _ in seen][:6] == [1, 1, 1, 1, 1, 6]
    first = await lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(1, "lbpage"), page_size=4))
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        lb.GetRoundLeaderboard(
            pb.GetRoundLeaderboardRequest(round=ref(1, T), page_size=4, page_token=first.next_page_token)
        ),
        "other filters",
    )


async def test_reputation_matches_hand_computed_weights(lb, seeded):
    resp = await lb.GetReputation(pb.GetReputationRequest(tournament_id=T, window_rounds=3))
    # linear weights over rounds 3, 2, 1: 3/6, 2/6, 1/6; a model's missing rounds are left out
    expected = REPUTATION_3
    assert list(resp.weights) == pytest.approx([3 / 6, 2 / 6, 1 / 6])
    assert resp.window_rounds == 3 and resp.last_round.round_number == 3 and resp.total_size == 6
    got = {e.model_id: e.reputation for e in resp.entries}
    assert got == pytest.approx(expected)
    assert [e.model_id for e in resp.entries] == ["f", "a", "c", "d", "b", "e"]
    assert {e.model_id: e.rounds_counted for e in resp.entries} == {"a": 3, "b": 3, "c": 2, "d": 1, "e": 1, "f": 1}
    assert next(e for e in resp.entries if e.model_id == "a").stake_satoshis == 5000

    default = await lb.GetReputation(pb.GetReputationRequest(tournament_id=T, page_size=2))
    assert default.window_rounds == 4 and len(default.entries) == 2 and default.next_page_token
    rest = await lb.GetReputation(
        pb.GetReputationRequest(tournament_id=T, page_size=10, page_token=default.next_page_token)
    )
    assert [e.model_id for e in default.entries] + [e.model_id for e in rest.entries] == [
        e.model_id for e in resp.entries
    ]
    mmc = await lb.GetReputation(
        pb.GetReputationRequest(tournament_id=T, metric=common_pb2.METRIC_MMC, window_rounds=1)
    )
    assert mmc.entries[0].model_id == "e" and mmc.entries[0].reputation == pytest.approx(0.05)


async def test_model_profile_and_unknown_model(lb, seeded):
    profile = (await lb.GetModelProfile(pb.GetModelProfileRequest(model_id="a"))).profile
    assert profile.model_display_name == "model a" and profile.tournament_id == T
    assert [(r.round.round_number, r.rank) for r in profile.rounds] == [(1, 3), (2, 1), (3, 2)]
    corr = {
        r.round.round_number: next(m.value for m in r.metrics if m.metric == common_pb2.METRIC_CORR)
        for r in profile.rounds
    }
    assert corr == {1: 0.01, 2: 0.05, 3: 0.04}
    assert profile.total_payout_satoshis == 120 and profile.rounds[-1].stake_satoshis == 5000
    await expect(grpc.StatusCode.NOT_FOUND, lb.GetModelProfile(pb.GetModelProfileRequest(model_id="m_nope")), "m_nope")
    await expect(grpc.StatusCode.INVALID_ARGUMENT, lb.GetModelProfile(pb.GetModelProfileRequest()), "model_id")


async def test_list_rounds_newest_first_with_pages(lb, seeded):
    first = await lb.ListRounds(pb.ListRoundsRequest(tournament_id=T, page_size=2))
    assert [r.round.round_number for r in first.rounds] == [3, 2] and first.next_page_token
    rest = await lb.ListRounds(pb.ListRoundsRequest(tournament_id=T, page_token=first.next_page_token))
    assert [r.round.round_number for r in rest.rounds] == [1] and rest.next_page_token == ""
    assert all(r.source == pb.SCORE_SOURCE_LIVE and r.publish_time.seconds > 0 for r in first.rounds)


async def test_publish_needs_an_operator(lb, keys, seeded):
    request = pb.PublishRoundRequest(request_id="p-anon", round=ref(3))
    await expect(grpc.StatusCode.UNAUTHENTICATED, lb.PublishRound(request))
    await expect(grpc.StatusCode.PERMISSION_DENIED, lb.PublishRound(request, metadata=md(keys.participant)))
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        lb.PublishRound(pb.PublishRoundRequest(request_id="p-0", round=ref(0)), metadata=md(keys.operator)),
        "round_number",
    )


async def test_cache_changes_when_another_replica_publishes(lb, services, database_url, seeded):
    cache: BoardCache = seeded
    cache.check_seconds = 3600.0  # no background check may run during this test
    try:
        before = await lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(0)))
        assert before.round.round_number == 3
        await seed(database_url, live_board(T, 4, [("a", 0.09, 0.08, 0.1), ("g", 0.07, 0.06, 0.08)]))
        stale = await lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(0)))
        assert stale.round.round_number == 3  # reads never wait for a reload
        assert await cache.sync()
        after = await lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(0)))
        assert after.round.round_number == 4 and [e.model_id for e in after.entries] == ["a", "g"]
        assert after.update_time.ToDatetime() >= before.update_time.ToDatetime()
        assert not await cache.sync()  # same version: nothing reloaded
    finally:
        cache.check_seconds = 1.0


async def test_replica_checks_version_at_most_once_per_interval(database_url, seeded):
    now = [100.0]
    database = Database(database_url, schema="leaderboard", pool_size=1)
    replica = BoardCache(database, check_seconds=1.0, clock=lambda: now[0])
    try:
        await replica.reload()
        version = replica.catalog.version
        await replica.pending_check if replica.pending_check else None
        checks = replica.checks
        replica.catalog  # noqa: B018 - within the interval: no new check
        now[0] += 0.5
        replica.catalog  # noqa: B018
        assert replica.pending_check is None or replica.pending_check.done()
        assert replica.checks == checks
        await seed(database_url, live_board(T, 5, [("a", 0.01, 0.0, 0.02)]))
        now[0] += 1.0
        assert replica.catalog.version == version  # the old catalog, at once
        assert await replica.pending_check
        assert replica.checks == checks + 1 and replica.catalog.version > version
        assert replica.catalog.round(T, 5) is not None
    finally:
        await database.dispose()


async def test_late_payouts_are_recorded_once(lb, services, database_url, seeded):
    await seed(
        database_url,
        live_board("lbpay", 1, [("x", 0.02, 0.01, 0.03, 0.0, 1000, 0), ("y", 0.01, 0.0, 0.02, 0.0, 2000, 0)]),
    )
    database = Database(database_url, schema="leaderboard", pool_size=1)
    try:
        async with database.transaction() as conn:
            assert ("lbpay", 1) in await rounds_repo.rounds_awaiting_payouts(conn, 100)
            burn = Payout(-40, "NON_POSITIVE_CONTRIBUTION", "contribution -0.01 is not positive")
            assert await rounds_repo.set_payouts(conn, "lbpay", 1, {"x": Payout(700), "y": burn, "zz": Payout(5)})
        async with database.transaction() as conn:
            assert not await rounds_repo.set_payouts(conn, "lbpay", 1, {"x": Payout(700), "y": burn})
            await rounds_repo.bump_version(conn)
    finally:
        await database.dispose()
    await services["leaderboard"].ctx.extras["cache"].sync()
    board = await lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=ref(1, "lbpay")))
    assert {e.model_id: e.payout_satoshis for e in board.entries} == {"x": 700, "y": -40}
    by_model = {e.model_id: e for e in board.entries}
    assert not by_model["x"].HasField("zero_payout")
    reason = by_model["y"].zero_payout
    assert reason.code == common_pb2.ZERO_PAYOUT_REASON_NON_POSITIVE_CONTRIBUTION
    assert reason.detail == "contribution -0.01 is not positive"
    assert board.round_info.payouts_known and board.round_info.total_payout_satoshis == 660
