"""Consistency as a payout rule: judged on the resolved live eras (scoring's figure), never at upload."""

from __future__ import annotations

import math

import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from services.payouts import peers
from services.payouts.domain.allocation import IneligibleReason, allocate
from services.payouts.domain.tournaments import ModelScore
from services.payouts.usecases.allocation import _line_rows, build_policy, resolved_consistency, results

RULES = peers.consistency_rules(
    sub_pb.ConsistencyRules(mode=sub_pb.CHECK_MODE_MARK, min_consistency=0.58, benchmark_logloss=math.log(2))
)


def scores(model_id: str, share: float | None, mmc: float = 0.01) -> ModelScore:
    """A model's round scores as scoring sends them, read by the peers."""
    out = sc_pb.ModelScores(model=common_pb2.ModelRef(model_id=model_id, participant_id=f"p-{model_id}"))
    out.mmc.mean = mmc
    out.corr.mean = mmc
    if share is not None:
        out.logloss.mean = 0.69
        out.logloss.consistency = share
    return peers.model_score(out)


@pytest.mark.parametrize(
    ("share", "expected"),
    [(4 / 6, True), (3 / 6, False), (0.58, True), (0.0, False), (float("nan"), None), (None, None)],
)
def test_consistent_means_enough_live_eras_beat_the_benchmark(share: float | None, expected: bool | None) -> None:
    assert resolved_consistency(scores("m", share), RULES) is expected


def test_an_off_rule_is_not_judged() -> None:
    off = peers.consistency_rules(sub_pb.ConsistencyRules(mode=sub_pb.CHECK_MODE_OFF, min_consistency=0.58))
    assert resolved_consistency(scores("m", 1.0), off) is None


def test_required_consistency_pays_only_models_consistent_on_live_eras() -> None:
    """Upload-time figures play no part: a submission carries no consistency at all any more."""
    message = sub_pb.PayoutRules(
        policy=common_pb2.PAYOUT_POLICY_POOL,
        require_consistency=True,
        require_originality=False,  # no submissions here: only consistency decides
        pool=common_pb2.PoolParameters(pool_satoshis=1_000_000),
    )
    payout = peers.payout_rules(message)
    round_scores = [scores("steady", 5 / 6), scores("lucky", 2 / 6, mmc=0.05), scores("graded", None)]
    found = results(round_scores, {}, {}, payout, RULES)
    allocation = allocate(found, build_policy("pool", payout))
    by_model = {line.model_id: line for line in allocation.lines}
    assert by_model["steady"].amount == 1_000_000
    assert by_model["lucky"].reason is IneligibleReason.INCONSISTENT and by_model["lucky"].amount == 0
    assert by_model["graded"].reason is IneligibleReason.CONSISTENCY_UNCHECKED  # unjudged fails a required rule
    reasons = {row["model_id"]: row["reason"] for row in _line_rows(allocation, round_scores, {}, RULES)}
    assert reasons["lucky"] == "not consistent: logloss beat 0.6931 in 33% of the live eras (needs 58%)"
    assert reasons["graded"].startswith("not consistent: no resolved live-era consistency")
    assert reasons["steady"] == ""
