"""Significance: a positive contribution whose interval does not lie above zero is not paid.

The attack it answers: a participant uploads noise (or many noise models) and collects whenever a
round's few live eras happen to favour it. With the rule, luck earns NOT_SIGNIFICANT and nothing.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from services.payouts import peers
from services.payouts.domain.allocation import (
    ContributionSource,
    ModelResult,
    PoolPolicy,
    StakePolicy,
    ZeroPayoutReason,
    allocate_pool,
    allocate_stake,
)
from services.payouts.usecases import allocation as handler
from services.submissions.api.rules import with_defaults
from shared.errors import InvalidArgument


def _model(i: int, corr: float, low: float, high: float, mmc: float = 0.0, stake: int = 0) -> ModelResult:
    return ModelResult(
        f"m{i}",
        f"p{i}",
        corr=corr,
        mmc=mmc,
        stake=stake,
        corr_interval=(low, high),
        mmc_interval=(mmc - 0.001, mmc + 0.001),
    )


def test_only_significant_contributions_share_the_pool() -> None:
    results = [_model(0, 0.04, 0.02, 0.06), _model(1, 0.03, -0.01, 0.07), _model(2, 0.01, 0.001, 0.02)]
    policy = PoolPolicy(1_000_000, ContributionSource.CORR, require_significance=True)
    lines = allocate_pool(results, policy).lines
    assert [line.amount for line in lines] == [800_000, 0, 200_000]
    assert lines[1].zero_reason is ZeroPayoutReason.NOT_SIGNIFICANT and lines[1].reason is None
    assert lines[1].score_low == Fraction(-0.01)
    assert lines[0].zero_reason is None and lines[2].zero_reason is None
    assert sum(line.amount for line in lines) == 1_000_000


def test_without_the_rule_luck_is_paid_like_skill() -> None:
    results = [_model(0, 0.04, 0.02, 0.06), _model(1, 0.04, -0.01, 0.09)]
    lines = allocate_pool(results, PoolPolicy(1_000, ContributionSource.CORR)).lines
    assert [line.amount for line in lines] == [500, 500]
    assert all(line.score_low is None for line in lines)


def test_no_significant_contribution_leaves_the_pool_unallocated() -> None:
    allocation = allocate_pool(
        [_model(0, 0.02, -0.01, 0.05)], PoolPolicy(1_000, ContributionSource.CORR, require_significance=True)
    )
    assert allocation.total_paid == 0 and allocation.unallocated == 1_000
    assert allocation.lines[0].zero_reason is ZeroPayoutReason.NOT_SIGNIFICANT


def test_a_model_without_an_interval_is_not_paid_on_an_unknown() -> None:
    result = ModelResult("m0", "p0", corr=0.05, mmc=0.01)
    lines = allocate_pool([result], PoolPolicy(1_000, ContributionSource.CORR, require_significance=True)).lines
    assert lines[0].amount == 0 and lines[0].zero_reason is ZeroPayoutReason.NOT_SIGNIFICANT


def test_a_mix_uses_the_conservative_bound_of_its_terms() -> None:
    # 1 x MMC + 2 x CORR: lower bound 1 x 0.0 + 2 x 0.01 = 0.02 > 0 -> paid; the second's bound is -0.01
    paid = ModelResult("m0", "p0", corr=0.02, mmc=0.01, corr_interval=(0.01, 0.03), mmc_interval=(0.0, 0.02))
    lucky = ModelResult("m1", "p1", corr=0.02, mmc=0.01, corr_interval=(0.01, 0.03), mmc_interval=(-0.03, 0.05))
    policy = PoolPolicy(900, ContributionSource.MMC, source_weight=1, corr_weight=2, require_significance=True)
    lines = allocate_pool([paid, lucky], policy).lines
    assert lines[0].amount == 900 and lines[0].score_low == Fraction(0.0) + 2 * Fraction(0.01)
    assert lines[1].amount == 0 and lines[1].zero_reason is ZeroPayoutReason.NOT_SIGNIFICANT


def test_stake_policy_gates_gains_but_still_burns_losses() -> None:
    results = [
        _model(0, 0.04, 0.02, 0.06, mmc=0.0, stake=1_000_000),  # significant gain
        _model(1, 0.04, -0.02, 0.10, mmc=0.0, stake=1_000_000),  # lucky gain: nothing
        _model(2, -0.04, -0.08, -0.01, mmc=0.0, stake=1_000_000),  # loss: burned as measured
    ]
    lines = allocate_stake(results, StakePolicy(10**15, require_significance=True)).lines
    assert lines[0].amount == 20_000
    assert lines[1].amount == 0 and lines[1].zero_reason is ZeroPayoutReason.NOT_SIGNIFICANT
    assert lines[2].amount == -20_000 and lines[2].zero_reason is ZeroPayoutReason.NON_POSITIVE_CONTRIBUTION


def _rules(**payout: object) -> sub_pb.TournamentRules:
    return with_defaults(sub_pb.TournamentRules(payout=sub_pb.PayoutRules(**payout)), common_pb2.TARGET_KIND_BINARY)


def test_the_tournament_default_pays_significant_corr() -> None:
    payout = _rules().payout
    assert payout.policy == common_pb2.PAYOUT_POLICY_POOL
    assert payout.pool.contribution_metric == common_pb2.CONTRIBUTION_METRIC_CORR
    assert payout.significance == sub_pb.PayoutRules.SIGNIFICANCE_REQUIRED
    policy = handler.build_policy("pool", peers.payout_rules(payout))
    assert isinstance(policy, PoolPolicy)
    assert policy.source is ContributionSource.CORR and policy.require_significance


def test_the_2016_pool_stays_available_by_rule_values() -> None:
    payout = _rules(
        pool=common_pb2.PoolParameters(contribution_metric=common_pb2.CONTRIBUTION_METRIC_MMC),
        significance=sub_pb.PayoutRules.SIGNIFICANCE_OFF,
    ).payout
    policy = handler.build_policy("pool", peers.payout_rules(payout))
    assert isinstance(policy, PoolPolicy)
    assert policy.source is ContributionSource.MMC and not policy.require_significance


def test_leave_one_out_has_no_interval_so_significance_defaults_off_and_cannot_be_required() -> None:
    loo = common_pb2.PoolParameters(contribution_metric=common_pb2.CONTRIBUTION_METRIC_LEAVE_ONE_OUT_GAIN)
    assert (
        _rules(policy=common_pb2.PAYOUT_POLICY_POOL, pool=loo).payout.significance
        == sub_pb.PayoutRules.SIGNIFICANCE_OFF
    )
    with pytest.raises(InvalidArgument, match=r"payout\.significance"):
        _rules(policy=common_pb2.PAYOUT_POLICY_POOL, pool=loo, significance=sub_pb.PayoutRules.SIGNIFICANCE_REQUIRED)
    with pytest.raises(InvalidArgument, match=r"payout\.significance"):
        _rules(significance=7)


def test_the_payouts_path_reads_intervals_from_scoring_and_explains_the_zero() -> None:
    scores = [
        sc_pb.ModelScores(
            model=common_pb2.ModelRef(model_id=f"m{i}", participant_id=f"p{i}"),
            corr=sc_pb.MetricScore(mean=0.03, ci_low=low, ci_high=0.06),
        )
        for i, low in enumerate((0.01, -0.002))
    ]
    rules = _rules(pool=common_pb2.PoolParameters(pool_satoshis=1_000))
    payout = rules.payout
    passed = sub_pb.CheckResult(outcome=sub_pb.CheckResult.OUTCOME_PASSED)
    submissions = {f"m{i}": sub_pb.Submission(originality=passed) for i in range(2)}  # originality is required
    # as the peers hand them to the use case
    scores = [peers.model_score(s) for s in scores]
    submissions = {m: peers.submission_info(s) for m, s in submissions.items()}
    payout, consistency = peers.payout_rules(payout), peers.consistency_rules(rules.consistency)
    allocation = handler.policy_rules.allocate(
        handler.results(scores, submissions, {}, payout, consistency), handler.build_policy("pool", payout)
    )
    assert [line.amount for line in allocation.lines] == [1_000, 0]
    rows = handler._line_rows(allocation, scores, submissions, consistency)
    assert rows[1]["reason_code"] == "NOT_SIGNIFICANT" and rows[1]["reason_value"] == -0.002
    assert rows[1]["reason"].startswith("not significant: contribution 0.03,")
    assert "-0.002" in rows[1]["reason"] and rows[0]["reason"] == ""
    assert common_pb2.ZeroPayoutReason.Value("ZERO_PAYOUT_REASON_NOT_SIGNIFICANT")  # the code travels by name
