"""PublishRound end to end against the real scoring service: a resolved round is scored, then
published, and the public board carries exactly scoring's numbers."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as pb
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as sc_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from tests.integration.conftest import md
from tests.integration.submissions.conftest import SMALL, blt_address, download, upload_requests

T = "lbpub"


async def test_publish_scored_round_shows_scorings_numbers(lb, subs, keys, services):
    operator = md(keys.operator)
    await subs.CreateTournament(
        sub_pb.CreateTournamentRequest(
            request_id="t-lbpub",
            tournament_id=T,
            display_name="Publish",
            target_kind=common_pb2.TARGET_KIND_BINARY,
            network=common_pb2.BITCOIN_NETWORK_BITCOINLIB_TEST,
        ),
        metadata=operator,
    )
    opened = (
        await subs.OpenRound(
            sub_pb.OpenRoundRequest(request_id="lbpub-open", tournament_id=T, generated=SMALL), metadata=operator
        )
    ).round
    _, ids, _, splits, feats, targets = await download(subs, opened.round, keys.participant)
    train = splits == common_pb2.SPLIT_TRAINING
    tour_idx = np.flatnonzero(~train)
    tour = [ids[i] for i in tour_idx]
    # one model that learned something (least squares on the training rows), and two noisy ones
    x = np.c_[feats, np.ones(len(feats))]
    w, *_ = np.linalg.lstsq(x[train], targets[train], rcond=None)
    rng = np.random.default_rng(5)
    fitted = np.clip(x[tour_idx] @ w, 0.05, 0.95)
    uploads = [
        ("alice-fit", keys.participant, fitted),
        ("alice-noise", keys.participant, rng.uniform(0.3, 0.7, len(tour))),
        ("bob-noise", keys.other, rng.uniform(0.35, 0.65, len(tour))),
    ]
    model_ids = {}
    for n, (name, key, values) in enumerate(uploads):
        model = (
            await subs.CreateModel(
                sub_pb.CreateModelRequest(
                    request_id=f"lbpub-m-{name}", tournament_id=T, display_name=name, payout_address=blt_address(40 + n)
                ),
                metadata=md(key),
            )
        ).model
        model_ids[model.model_id] = name
        await subs.UploadPredictions(
            upload_requests(
                sub_pb.UploadHeader(request_id=f"lbpub-u-{name}", round=opened.round, model_id=model.model_id),
                tour,
                values,
            ),
            metadata=md(key),
        )
    await subs.CloseRound(sub_pb.CloseRoundRequest(request_id="lbpub-close", round=opened.round), metadata=operator)
    await subs.ResolveRound(
        sub_pb.ResolveRoundRequest(request_id="lbpub-resolve", round=opened.round, use_generated_targets=True),
        metadata=operator,
    )
    scoring = sc_grpc.ScoringServiceStub(services["leaderboard"].ctx.extras["peers"]._channel("scoring"))
    run = (
        await scoring.ScoreRound(
            sc_pb.ScoreRoundRequest(request_id="lbpub-score", round=opened.round), metadata=operator
        )
    ).run
    assert run.state == sc_pb.ScoringRun.STATE_SUCCEEDED, run.error_message

    published = await lb.PublishRound(
        pb.PublishRoundRequest(request_id="lbpub-publish", round=opened.round), metadata=operator
    )
    again = await lb.PublishRound(
        pb.PublishRoundRequest(request_id="lbpub-publish", round=opened.round), metadata=operator
    )
    assert published == again and published.round.source == pb.SCORE_SOURCE_LIVE
    republished = await lb.PublishRound(
        pb.PublishRoundRequest(request_id="lbpub-again", round=opened.round), metadata=operator
    )
    assert republished.round.publish_time == published.round.publish_time  # a re-publish keeps the first time
    other = common_pb2.RoundRef(tournament_id=T, round_number=2)
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await lb.PublishRound(pb.PublishRoundRequest(request_id="lbpub-publish", round=other), metadata=operator)
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert published.round.model_count == 3 and published.round.main_metric == common_pb2.METRIC_LOGLOSS

    expected = (
        await scoring.ListRoundScores(
            sc_pb.ListRoundScoresRequest(round=opened.round, order_by=common_pb2.METRIC_LOGLOSS), metadata=operator
        )
    ).scores
    board = await lb.GetRoundLeaderboard(pb.GetRoundLeaderboardRequest(round=opened.round))  # anonymous
    assert board.source == pb.SCORE_SOURCE_LIVE
    assert [e.model_id for e in board.entries] == [s.model.model_id for s in expected]
    for entry, scores in zip(board.entries, expected, strict=True):
        assert entry.model_display_name == model_ids[entry.model_id]
        assert (entry.value, entry.ci_low, entry.ci_high) == (
            scores.logloss.mean,
            scores.logloss.ci_low,
            scores.logloss.ci_high,
        )
    assert board.entries[0].model_display_name == "alice-fit"
    assert {e.participant_display_name for e in board.entries} == {"alice", "bob"}
    meta = (await scoring.GetMetaModel(sc_pb.GetMetaModelRequest(round=opened.round), metadata=operator)).meta_model
    shown = {m.metric: m.value for m in board.round_info.meta_model_metrics}
    expected_meta = {
        getattr(common_pb2, f"METRIC_{name.upper()}"): getattr(meta, name).mean
        for name in ("logloss", "auc", "corr")
        if meta.HasField(name)
    }
    assert shown == expected_meta and expected_meta
