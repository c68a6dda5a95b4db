"""A tournament's rules: defaults filled in, checked, and read back from their stored form.

Rules travel as the ``TournamentRules`` proto and are stored as its bytes, so every service reads
the same values; zero fields mean the documented defaults, filled in here once at creation.
"""

from __future__ import annotations

import math

from crowdquant.common.v1 import common_pb2
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from shared.errors import InvalidArgument

DEFAULT_MAX_UPLOADS = 20
MAX_UPLOADS_CEILING = 1000


def _bad(field: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"rules.{field}: {why}", metadata={"field": f"rules.{field}"})


def _fraction(value: float, field: str, *, default: float, low: float = 0.0, high: float = 1.0) -> float:
    if value == 0:
        return default
    if not math.isfinite(value) or not low < value <= high:
        raise _bad(field, f"must be in ({low}, {high}], got {value}")
    return value


def with_defaults(rules: pb.TournamentRules, target_kind: int) -> pb.TournamentRules:
    """A copy of ``rules`` with every zero field replaced by its default, refusing bad values."""
    out = pb.TournamentRules()
    out.CopyFrom(rules)
    up = out.upload
    if up.max_uploads_per_model_per_round < 0 or up.max_uploads_per_model_per_round > MAX_UPLOADS_CEILING:
        raise _bad("upload.max_uploads_per_model_per_round", f"must be 1-{MAX_UPLOADS_CEILING}")
    up.max_uploads_per_model_per_round = up.max_uploads_per_model_per_round or DEFAULT_MAX_UPLOADS
    # A negative min_std turns the constant check off (e.g. a tournament that admits the 0.5 benchmark).
    up.min_std = 0.0 if up.min_std < 0 else _fraction(up.min_std, "upload.min_std", default=1e-6, high=0.5)

    orig = out.originality
    if orig.mode == pb.CHECK_MODE_UNSPECIFIED:
        orig.mode = pb.CHECK_MODE_MARK
    orig.max_abs_pearson = _fraction(orig.max_abs_pearson, "originality.max_abs_pearson", default=0.95)
    orig.duplicate_ks_statistic = _fraction(
        orig.duplicate_ks_statistic, "originality.duplicate_ks_statistic", default=0.005
    )
    orig.similar_ks_statistic = _fraction(orig.similar_ks_statistic, "originality.similar_ks_statistic", default=0.03)
    orig.max_abs_rank_correlation = _fraction(
        orig.max_abs_rank_correlation, "originality.max_abs_rank_correlation", default=0.95
    )
    if orig.similar_submissions_limit < 0:
        raise _bad("originality.similar_submissions_limit", "must be >= 1")
    orig.similar_submissions_limit = orig.similar_submissions_limit or 1

    conc = out.concordance
    if conc.mode == pb.CHECK_MODE_UNSPECIFIED:
        conc.mode = pb.CHECK_MODE_MARK
    conc.max_ks_statistic = _fraction(conc.max_ks_statistic, "concordance.max_ks_statistic", default=0.12)
    if not 0 <= conc.cluster_count <= 64:
        raise _bad("concordance.cluster_count", "must be 1-64")
    conc.cluster_count = conc.cluster_count or 5

    cons = out.consistency
    if cons.mode == pb.CHECK_MODE_UNSPECIFIED:
        cons.mode = pb.CHECK_MODE_MARK if target_kind == common_pb2.TARGET_KIND_BINARY else pb.CHECK_MODE_OFF
    if cons.mode == pb.CHECK_MODE_REJECT:
        # It needs the hidden targets, so it is judged at resolve on live eras: no upload left to refuse.
        raise _bad(
            "consistency.mode",
            "REJECT is not possible: consistency is judged at resolve on the live "
            "eras; use MARK (with payout.require_consistency) or OFF",
        )
    cons.min_consistency = _fraction(cons.min_consistency, "consistency.min_consistency", default=0.58)
    cons.benchmark_logloss = _fraction(
        cons.benchmark_logloss, "consistency.benchmark_logloss", default=math.log(2), high=10.0
    )

    sc = out.scoring
    sc.logloss_epsilon = _fraction(sc.logloss_epsilon, "scoring.logloss_epsilon", default=1e-15, high=0.1)
    if sc.meta_model_policy == common_pb2.META_MODEL_POLICY_UNSPECIFIED:
        sc.meta_model_policy = common_pb2.META_MODEL_POLICY_STAKE_WEIGHTED
    if not 0 <= sc.bootstrap_samples <= 100_000:
        raise _bad("scoring.bootstrap_samples", "must be 1-100000")
    sc.bootstrap_samples = sc.bootstrap_samples or 1000
    sc.confidence_level = _fraction(sc.confidence_level, "scoring.confidence_level", default=0.95, high=0.999)

    pay = out.payout
    if not pay.HasField("require_originality"):
        pay.require_originality = True  # copies gain nothing unless a tournament says otherwise
    if pay.policy == common_pb2.PAYOUT_POLICY_UNSPECIFIED:
        pay.policy = common_pb2.PAYOUT_POLICY_POOL
    if pay.pool.pool_satoshis < 0:
        raise _bad("payout.pool.pool_satoshis", "must not be negative")
    if pay.pool.pool_satoshis > 21_000_000 * 100_000_000:
        raise _bad("payout.pool.pool_satoshis", "exceeds the bitcoin supply")
    # The defaults pay for skill, not luck (README "Paying for skill, not luck", measured by `crowdquant
    # simulate`): the pool is shared by live CORR, and only contributions whose interval lies above zero
    # are paid. The 2016 pool is CONTRIBUTION_METRIC_MMC with SIGNIFICANCE_OFF.
    if pay.pool.contribution_metric == common_pb2.CONTRIBUTION_METRIC_UNSPECIFIED:
        pay.pool.contribution_metric = common_pb2.CONTRIBUTION_METRIC_CORR
    loo = (
        pay.policy == common_pb2.PAYOUT_POLICY_POOL
        and pay.pool.contribution_metric == common_pb2.CONTRIBUTION_METRIC_LEAVE_ONE_OUT_GAIN
    )
    if pay.significance == pb.PayoutRules.SIGNIFICANCE_UNSPECIFIED:
        pay.significance = pb.PayoutRules.SIGNIFICANCE_OFF if loo else pb.PayoutRules.SIGNIFICANCE_REQUIRED
    elif pay.significance not in (pb.PayoutRules.SIGNIFICANCE_OFF, pb.PayoutRules.SIGNIFICANCE_REQUIRED):
        raise _bad("payout.significance", f"unknown value {pay.significance}")
    elif loo and pay.significance == pb.PayoutRules.SIGNIFICANCE_REQUIRED:
        raise _bad("payout.significance", "the leave-one-out gain has no interval; use SIGNIFICANCE_OFF")
    for field in ("corr_weight", "mmc_weight"):
        for params in (pay.pool, pay.stake):
            if not math.isfinite(getattr(params, field)):
                raise _bad(f"payout.{field}", "must be finite")
    st = pay.stake
    st.corr_weight = st.corr_weight or 0.5
    st.mmc_weight = st.mmc_weight or 2.0
    st.clip = _fraction(st.clip, "payout.stake.clip", default=0.05, high=1.0)
    if st.payout_threshold_satoshis < 0:
        raise _bad("payout.stake.payout_threshold_satoshis", "must not be negative")
    st.payout_threshold_satoshis = st.payout_threshold_satoshis or 72_000 * 100_000_000
    return out


def originality_rule(rules: pb.TournamentRules):  # type: ignore[no-untyped-def]
    from services.submissions.domain.originality import OriginalityRule

    o = rules.originality
    return OriginalityRule(
        o.max_abs_pearson,
        o.duplicate_ks_statistic,
        o.similar_ks_statistic,
        o.similar_submissions_limit,
        o.max_abs_rank_correlation,
        o.ks_pass,
    )
