"""ScoreRound over real gRPC on a generated round: exact benchmarks, contributions, idempotence.

Resolved scores come from the live rows only (12 validation and 4 live eras here): validation rows
feed only the public Ladder board while the round is open.
"""

from __future__ import annotations

import asyncio
import math

import grpc
import numpy as np
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as sc_grpc
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import identity_service_pb2_grpc as id_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from tests.integration.conftest import md
from tests.integration.submissions.conftest import blt_address, download, upload_requests
from tests.support import table_checksums

T = "scored"
SPEC = pb.GeneratedDatasetSpec(
    seed=3,
    n_train=20000,
    n_validation=6000,
    n_live=2000,
    n_features=8,
    n_training_eras=20,
    n_tournament_eras=16,
    signal_strength=0.5,
)
LIVE_ERAS = 4


@pytest.fixture(scope="module")
async def scoring(services):
    async with grpc.aio.insecure_channel(services["scoring"].address) as channel:
        yield sc_grpc.ScoringServiceStub(channel)


async def make_participant(services, keys, name):
    from crowdquant.cli.bootstrap import create_key
    from shared.auth import Role
    from shared.config import CommonSettings

    async with grpc.aio.insecure_channel(services["submissions"].address) as ch:
        p = (
            await id_grpc.IdentityServiceStub(ch).CreateParticipant(
                id_pb.CreateParticipantRequest(request_id=f"p-{name}", display_name=name), metadata=md(keys.operator)
            )
        ).participant
    url = services["submissions"].ctx.database.url
    return p.participant_id, await create_key(CommonSettings(), Role.PARTICIPANT, p.participant_id, "", [], url=url)


async def stake(services, keys, model, key) -> None:
    """Only "linear" stakes, so the stake-weighted meta model is exactly its ranks (a copy of the meta model)."""
    from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
    from crowdquant.payouts.v1 import payouts_service_pb2_grpc as po_grpc

    async with grpc.aio.insecure_channel(services["payouts"].address) as channel:
        payouts = po_grpc.PayoutsServiceStub(channel)
        await payouts.RecordDeposit(
            po_pb.RecordDepositRequest(
                request_id="dep-linear", participant_id=model.participant_id, amount_satoshis=1_000_000
            ),
            metadata=md(keys.operator),
        )
        await payouts.SetStake(
            po_pb.SetStakeRequest(request_id="stake-linear", model_id=model.model_id, amount_satoshis=500_000),
            metadata=md(key),
        )


@pytest.fixture(scope="module")
async def scored_round(subs, keys, services):
    await subs.CreateTournament(
        pb.CreateTournamentRequest(
            request_id="t-scored",
            tournament_id=T,
            target_kind=common_pb2.TARGET_KIND_BINARY,
            rules=pb.TournamentRules(upload=pb.UploadRules(min_std=-1)),
        ),
        metadata=md(keys.operator),
    )
    opened = (
        await subs.OpenRound(
            pb.OpenRoundRequest(request_id="o-scored", tournament_id=T, generated=SPEC), metadata=md(keys.operator)
        )
    ).round
    _, ids, eras, splits, feats, targets = await download(subs, opened.round, keys.participant)
    train = splits == common_pb2.SPLIT_TRAINING
    x = np.c_[feats, np.ones(len(feats))].astype(np.float64)
    # a small logistic regression by Newton steps on the training rows
    w = np.zeros(x.shape[1])
    for _ in range(8):
        p = 1 / (1 + np.exp(-x[train] @ w))
        grad = x[train].T @ (targets[train] - p)
        hess = (x[train] * (p * (1 - p))[:, None]).T @ x[train] + 1e-6 * np.eye(x.shape[1])
        w += np.linalg.solve(hess, grad)
    tour = ~train
    tour_ids = [i for i, t in zip(ids, tour, strict=True) if t]
    linear = 1 / (1 + np.exp(-x[tour] @ w))
    rng = np.random.default_rng(5)
    models = {
        "linear": linear,
        "constant": np.full(tour.sum(), 0.5),
        "noise": rng.uniform(0.3, 0.7, tour.sum()),
        "half": 0.5 + 0.5 * (linear - 0.5) + rng.normal(0, 0.01, tour.sum()),
    }
    # the same predictions as "linear" on live rows, anything on validation rows: resolves identically
    validation = splits[tour] == common_pb2.SPLIT_VALIDATION
    models["linear-twin"] = np.where(validation, rng.uniform(0.001, 0.999, tour.sum()), linear)
    model_ids = {}
    for name, values in models.items():
        _, key = await make_participant(services, keys, f"sc-{name}")
        model = (
            await subs.CreateModel(
                pb.CreateModelRequest(
                    request_id=f"m-{name}", tournament_id=T, display_name=name, payout_address=blt_address(40)
                ),
                metadata=md(key),
            )
        ).model
        if name == "linear":
            await stake(services, keys, model, key)
        await subs.UploadPredictions(
            upload_requests(
                pb.UploadHeader(request_id=f"u-{name}", round=opened.round, model_id=model.model_id),
                tour_ids,
                np.clip(values, 0.001, 0.999),
            ),
            metadata=md(key),
        )
        model_ids[name] = (model.model_id, key)
    live_eras = sorted({e for e, s in zip(eras, splits, strict=True) if s == common_pb2.SPLIT_LIVE})
    return opened, model_ids, live_eras


async def test_scoring_before_resolve_is_refused(scoring, keys, scored_round):
    opened, _, _ = scored_round
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await scoring.ScoreRound(
            sc_pb.ScoreRoundRequest(request_id="early", round=opened.round), metadata=md(keys.operator)
        )
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "RESOLVED" in info.value.details()


async def test_ladder_public_scores_appear_while_open(scoring, keys, scored_round):
    opened, model_ids, _ = scored_round
    for _ in range(100):
        resp = await scoring.GetPublicScores(
            sc_pb.GetPublicScoresRequest(round=opened.round), metadata=md(keys.operator)
        )
        if len(resp.public_scores) == len(model_ids):
            break
        await asyncio.sleep(0.1)
    board = {s.model.model_id: s for s in resp.public_scores}
    assert set(board) == {m for m, _ in model_ids.values()}
    linear, constant = board[model_ids["linear"][0]], board[model_ids["constant"][0]]
    assert linear.displayed_value < constant.displayed_value
    assert linear.displayed_value == round(linear.displayed_value, 4)  # a fixed grid, not the hidden step


async def close_and_resolve(subs, keys, ref) -> None:
    await subs.CloseRound(pb.CloseRoundRequest(request_id="c-scored", round=ref), metadata=md(keys.operator))
    await subs.ResolveRound(
        pb.ResolveRoundRequest(request_id="r-scored", round=ref, use_generated_targets=True), metadata=md(keys.operator)
    )


async def payouts_stakes(services, keys, ref) -> list[sc_pb.ModelStake]:
    """Payouts' stakes at the round's close, as the pipeline hands them to ScoreRound."""
    from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
    from crowdquant.payouts.v1 import payouts_service_pb2_grpc as po_grpc

    async with grpc.aio.insecure_channel(services["payouts"].address) as channel:
        found = await po_grpc.PayoutsServiceStub(channel).GetRoundStakes(
            po_pb.GetRoundStakesRequest(round=ref), metadata=md(keys.operator)
        )
    return [sc_pb.ModelStake(model_id=s.model_id, stake_satoshis=s.stake_satoshis) for s in found.stakes]


@pytest.mark.parametrize(
    ("stakes", "problem"),
    [
        ([sc_pb.ModelStake(model_id="m_x", stake_satoshis=-1)], "negative"),
        ([sc_pb.ModelStake(model_id="", stake_satoshis=5)], "model_id"),
        ([sc_pb.ModelStake(model_id="m_x", stake_satoshis=5)] * 2, "once"),
    ],
)
async def test_bad_stakes_start_no_run(subs, scoring, keys, scored_round, stakes, problem):
    """Stakes come with ScoreRound (scoring calls no payouts); a bad list is refused before any run."""
    opened, _, _ = scored_round
    await close_and_resolve(subs, keys, opened.round)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await scoring.ScoreRound(
            sc_pb.ScoreRoundRequest(request_id=f"bad-{problem}", round=opened.round, stakes=stakes),
            metadata=md(keys.operator),
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert problem in info.value.details()
    round_now = (await subs.GetRound(pb.GetRoundRequest(round=opened.round), metadata=md(keys.operator))).round
    assert round_now.state == pb.Round.STATE_RESOLVED


async def test_score_round_end_to_end(subs, scoring, keys, services, scored_round, database_url):
    opened, model_ids, live_eras = scored_round
    await close_and_resolve(subs, keys, opened.round)
    stakes = await payouts_stakes(services, keys, opened.round)
    run = (
        await scoring.ScoreRound(
            sc_pb.ScoreRoundRequest(request_id="score-1", round=opened.round, stakes=stakes),
            metadata=md(keys.operator),
        )
    ).run
    assert run.state == sc_pb.ScoringRun.STATE_SUCCEEDED, run.error_message
    assert run.models_scored == 5
    round_now = (await subs.GetRound(pb.GetRoundRequest(round=opened.round), metadata=md(keys.operator))).round
    assert round_now.state == pb.Round.STATE_SCORED

    def scores(name):
        return scoring.GetScores(
            sc_pb.GetScoresRequest(round=opened.round, model_id=model_ids[name][0]), metadata=md(keys.operator)
        )

    constant = (await scores("constant")).scores
    assert abs(constant.logloss.overall - math.log(2)) < 1e-9
    linear = (await scores("linear")).scores
    assert linear.logloss.overall < constant.logloss.overall
    noise = (await scores("noise")).scores
    assert linear.corr.mean > noise.corr.mean
    # the only staked model is the meta model: its contribution beyond the meta model is nil
    assert linear.stake_satoshis == 500_000 and linear.meta_weight == 1.0
    assert abs(linear.mmc.overall) < 1e-6 and abs(noise.mmc.overall) > 1e-4
    assert linear.logloss.ci_low <= linear.logloss.mean <= linear.logloss.ci_high
    assert [e.era for e in linear.corr.eras] == live_eras and len(live_eras) == LIVE_ERAS
    meta = (
        await scoring.GetMetaModel(sc_pb.GetMetaModelRequest(round=opened.round), metadata=md(keys.operator))
    ).meta_model
    assert abs(sum(w.weight for w in meta.weights) - 1) < 1e-9

    # paginated listing, best first by logloss, no skips or repeats
    seen, token = [], ""
    while True:
        page = await scoring.ListRoundScores(
            sc_pb.ListRoundScoresRequest(
                round=opened.round, order_by=common_pb2.METRIC_LOGLOSS, page_size=3, page_token=token
            ),
            metadata=md(keys.operator),
        )
        seen += [(s.model.model_id, s.logloss.mean) for s in page.scores]
        token = page.next_page_token
        if not token:
            break
    assert len({m for m, _ in seen}) == 5 and [v for _, v in seen] == sorted(v for _, v in seen)

    # other participants can't read scores before publication; the owner can
    other_key = model_ids["noise"][1]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await scoring.GetScores(
            sc_pb.GetScoresRequest(round=opened.round, model_id=model_ids["linear"][0]), metadata=md(other_key)
        )
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    own = await scoring.GetScores(
        sc_pb.GetScoresRequest(round=opened.round, model_id=model_ids["noise"][0]), metadata=md(other_key)
    )
    assert own.scores.model.model_id == model_ids["noise"][0]

    # re-running with the same stakes changes nothing
    before = await table_checksums(database_url, ["scoring"])
    again = (
        await scoring.ScoreRound(
            sc_pb.ScoreRoundRequest(request_id="score-2", round=opened.round, stakes=stakes),
            metadata=md(keys.operator),
        )
    ).run
    assert again.run_id == run.run_id
    after = await table_checksums(database_url, ["scoring"])
    assert {k: v for k, v in before.items() if "idempotency" not in k} == {
        k: v for k, v in after.items() if "idempotency" not in k
    }


def _metric_fields(score: sc_pb.MetricScore) -> tuple[list[str], list[float]]:
    """Era labels, and every number of a metric score (summaries, interval, per-era values)."""
    numbers = [
        score.overall,
        score.mean,
        score.std,
        score.sharpe,
        score.max_drawdown,
        score.consistency,
        score.ci_low,
        score.ci_high,
        *(e.value for e in score.eras),
    ]
    return [e.era for e in score.eras], numbers


async def test_validation_rows_do_not_move_resolved_scores(subs, scoring, keys, scored_round):
    """Two models with the same live predictions and unrelated validation predictions resolve alike.

    Whatever a participant learns about validation targets (probes, boosting against the public
    board) therefore buys no rank and no satoshis: every resolved figure (each metric, per-era
    series, consistency, bootstrap interval, MMC) is computed from live rows only. On main, which
    scored validation and live eras together, the twin's uniform noise on 6,000 validation rows
    gave it a far worse logloss than "linear".
    """
    opened, model_ids, _ = scored_round
    await close_and_resolve(subs, keys, opened.round)
    run = (
        await scoring.ScoreRound(
            sc_pb.ScoreRoundRequest(request_id="score-twin", round=opened.round), metadata=md(keys.operator)
        )
    ).run
    while run.state == sc_pb.ScoringRun.STATE_RUNNING:
        await asyncio.sleep(0.1)
        run = (
            await scoring.GetScoringRun(sc_pb.GetScoringRunRequest(run_id=run.run_id), metadata=md(keys.operator))
        ).run
    assert run.state == sc_pb.ScoringRun.STATE_SUCCEEDED, run.error_message

    async def scores(name):
        return (
            await scoring.GetScores(
                sc_pb.GetScoresRequest(round=opened.round, model_id=model_ids[name][0]), metadata=md(keys.operator)
            )
        ).scores

    linear, twin = await scores("linear"), await scores("linear-twin")
    for metric in ("logloss", "auc", "corr", "mmc"):
        (eras_a, a), (eras_b, b) = _metric_fields(getattr(linear, metric)), _metric_fields(getattr(twin, metric))
        assert eras_a == eras_b and len(eras_a) == LIVE_ERAS, metric
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12), metric
    assert twin.logloss.mean < (await scores("noise")).logloss.mean
