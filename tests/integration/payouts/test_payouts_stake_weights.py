"""Payouts pays only on a meta model weighed with its own stakes.

Stakes come to scoring with ScoreRound (the pipeline reads them from payouts). A round scored with
other stakes (here: none) would compute MMC against another meta model than the one at risk, so
payouts refuses to allocate it, changing nothing; scoring the round again with payouts' stakes
replaces the run, and the allocation goes through.
"""

from __future__ import annotations

import grpc
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from shared.rpc.status import error_info
from tests.integration.conftest import md
from tests.integration.payouts import scenario
from tests.support import table_checksums

T = "weights"


async def score(stubs, ref, request_id: str, stakes: list[sc_pb.ModelStake]) -> sc_pb.ScoringRun:
    run = (
        await stubs.scoring.ScoreRound(
            sc_pb.ScoreRoundRequest(request_id=request_id, round=ref, stakes=stakes), metadata=md(stubs.operator)
        )
    ).run
    assert run.state == sc_pb.ScoringRun.STATE_SUCCEEDED, run.error_message
    return run


async def test_allocation_refuses_a_run_weighted_with_other_stakes(stubs, database_url):
    t = await scenario.tournament(stubs, T, address_seed=70, tournament_rules=scenario.rules())
    await scenario.deposit_and_stake(stubs, t, {"linear": 300_000, "noise": 100_000}, 1_000_000)
    ref = await scenario.open_round(stubs, t, seed=71)
    await scenario.upload_all(stubs, t, ref, seed=71)
    op = md(stubs.operator)
    await stubs.subs.CloseRound(pb.CloseRoundRequest(request_id=f"close-{T}", round=ref), metadata=op)
    await stubs.subs.ResolveRound(
        pb.ResolveRoundRequest(request_id=f"resolve-{T}", round=ref, use_generated_targets=True), metadata=op
    )
    unweighted = await score(stubs, ref, f"score-{T}-none", [])

    before = await table_checksums(database_url, ["payouts"])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stubs.payouts.AllocateRound(po_pb.AllocateRoundRequest(request_id=f"a-{T}", round=ref), metadata=op)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(info.value).reason == "STAKES_DIFFER"
    assert "GetRoundStakes" in info.value.details()
    assert await table_checksums(database_url, ["payouts"]) == before

    staked = await stubs.payouts.GetRoundStakes(po_pb.GetRoundStakesRequest(round=ref), metadata=op)
    stakes = [sc_pb.ModelStake(model_id=s.model_id, stake_satoshis=s.stake_satoshis) for s in staked.stakes]
    assert sum(s.stake_satoshis for s in stakes) == 400_000
    weighted = await score(stubs, ref, f"score-{T}-stakes", stakes)
    assert weighted.run_id != unweighted.run_id  # other stakes: a new run replaces the first
    first = (await stubs.scoring.GetScoringRun(sc_pb.GetScoringRunRequest(run_id=unweighted.run_id), metadata=op)).run
    assert first.state == sc_pb.ScoringRun.STATE_FAILED and "superseded" in first.error_message
    again = await score(stubs, ref, f"score-{T}-stakes-again", stakes)
    assert again.run_id == weighted.run_id  # the same stakes join the succeeded run

    allocation = (
        await stubs.payouts.AllocateRound(po_pb.AllocateRoundRequest(request_id=f"a2-{T}", round=ref), metadata=op)
    ).allocation
    assert allocation.lines and allocation.policy == common_pb2.PAYOUT_POLICY_POOL
