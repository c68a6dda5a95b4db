"""Allocation policies: the pool is shared to the satoshi, stakes move at most 5%, rounding is stated."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.payouts.domain.allocation import (
    ContributionSource,
    EligibilityRules,
    IneligibleReason,
    ModelResult,
    PolicyName,
    PoolPolicy,
    StakePolicy,
    ZeroPayoutReason,
    allocate,
    allocate_pool,
    allocate_stake,
)
from shared.errors import InvalidArgument

score = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.floats(min_value=-1, max_value=1, allow_nan=False, allow_infinity=False),
)
flag = st.one_of(st.none(), st.booleans())


@st.composite
def model_results(draw, max_size: int = 12) -> list[ModelResult]:
    count = draw(st.integers(min_value=0, max_value=max_size))
    return [
        ModelResult(
            model_id=f"m{i}",
            participant_id=f"p{draw(st.integers(0, 4))}",
            corr=draw(score),
            mmc=draw(score),
            loo=draw(score),
            stake=draw(st.one_of(st.just(0), st.integers(min_value=0, max_value=10**13))),
            original=draw(flag),
            consistent=draw(flag),
            concordant=draw(flag),
        )
        for i in range(count)
    ]


ORIGINALITY = EligibilityRules(require_originality=True)
rules = st.builds(
    EligibilityRules,
    require_consistency=st.booleans(),
    require_concordance=st.booleans(),
    require_originality=st.booleans(),
)
weights = st.one_of(st.just(0), st.just(1), st.fractions(min_value=-2, max_value=3, max_denominator=100))


def _random_score(rng: random.Random) -> float | None:
    roll = rng.random()
    if roll < 0.05:
        return None
    if roll < 0.08:
        return float("nan")
    return rng.uniform(-1, 1) * rng.choice([1, 0.1, 0.001])


def random_results(rng: random.Random) -> list[ModelResult]:
    """A round of up to 15 models with random scores, stakes and flags (cheap, for many cases)."""
    return [
        ModelResult(
            model_id=f"m{i}",
            participant_id=f"p{rng.randrange(5)}",
            corr=_random_score(rng),
            mmc=_random_score(rng),
            loo=_random_score(rng),
            stake=rng.choice([0, rng.randrange(0, 10 ** rng.randrange(1, 14))]),
            original=rng.choice([None, True, True, False]),
            consistent=rng.choice([None, True, True, False]),
            concordant=rng.choice([None, True, True, False]),
        )
        for i in range(rng.randrange(0, 16))
    ]


def _exact(value: float | None) -> Fraction | None:
    if value is None or math.isnan(value):
        return None
    return Fraction(value)


# --- pool -------------------------------------------------------------------------------------------


def check_pool(results: list[ModelResult], policy: PoolPolicy) -> None:
    """The pool invariants, checked against an exact recomputation."""
    allocation = allocate_pool(results, policy)
    pool = policy.pool
    amounts = [line.amount for line in allocation.lines]
    assert all(isinstance(a, int) and a >= 0 for a in amounts)
    positive = [line for line in allocation.lines if line.eligible and line.score is not None and line.score > 0]
    if positive:
        assert sum(amounts) == pool
        assert allocation.unallocated == 0
    else:
        assert sum(amounts) == 0
        assert allocation.unallocated == pool
    assert allocation.total_paid + allocation.unallocated == pool  # no satoshi created or lost
    total_positive = sum((line.score for line in positive), Fraction(0))
    for line in allocation.lines:
        if not line.eligible:
            assert line.amount == 0 and line.reason is not None
        elif line in positive:
            assert abs(line.amount - pool * line.score / total_positive) < 1
        else:
            assert line.amount == 0


@settings(max_examples=200, deadline=None)
@given(
    results=model_results(),
    pool=st.integers(min_value=0, max_value=10**15),
    source=st.sampled_from(list(ContributionSource)),
    source_weight=weights,
    corr_weight=weights,
    eligibility=rules,
)
def test_pool_sums_exactly_to_the_pool_or_allocates_nothing(
    results, pool, source, source_weight, corr_weight, eligibility
) -> None:
    check_pool(results, PoolPolicy(pool, source, source_weight, corr_weight, eligibility))


def test_pool_invariants_over_ten_thousand_seeded_rounds() -> None:
    rng = random.Random(7)
    for _ in range(10_000):
        policy = PoolPolicy(
            rng.randrange(0, 10 ** rng.randrange(1, 16)),
            rng.choice(list(ContributionSource)),
            rng.choice([1, 0, Fraction(rng.randrange(-5, 6), 4)]),
            rng.choice([0, 1, Fraction(rng.randrange(-5, 6), 4)]),
            EligibilityRules(rng.random() < 0.3, rng.random() < 0.3, rng.random() < 0.5),
        )
        check_pool(random_results(rng), policy)


def test_pool_splits_by_positive_mmc_and_records_reasons() -> None:
    results = [
        ModelResult("a", "alice", corr=0.01, mmc=0.25, original=True),
        ModelResult("b", "bob", corr=0.02, mmc=0.125, original=True),
        ModelResult("c", "carol", corr=0.05, mmc=-0.02, original=True),
        ModelResult("d", "dave", corr=0.05, mmc=0.5, original=False),
        ModelResult("e", "erin", corr=0.05, mmc=None, original=True),
        ModelResult("f", "frank", corr=0.05, mmc=0.625, consistent=False, original=True),
    ]
    allocation = allocate_pool(
        results,
        PoolPolicy(1_000_000, rules=EligibilityRules(require_consistency=True, require_originality=True)),
    )
    by_model = {line.model_id: line for line in allocation.lines}
    # consistency is required, and a/b were never checked, so only models that passed could be paid
    assert by_model["a"].reason is IneligibleReason.CONSISTENCY_UNCHECKED
    assert by_model["d"].reason is IneligibleReason.NOT_ORIGINAL
    assert by_model["f"].reason is IneligibleReason.INCONSISTENT
    assert allocation.total_paid == 0 and allocation.unallocated == 1_000_000

    allocation = allocate_pool(results, PoolPolicy(1_000_000, rules=EligibilityRules(require_originality=True)))
    by_model = {line.model_id: line for line in allocation.lines}
    assert by_model["a"].amount == 250_000  # 0.25 / (0.25 + 0.125 + 0.625) of the pool
    assert by_model["b"].amount == 125_000
    assert by_model["f"].amount == 625_000  # consistency not required by this tournament
    assert by_model["c"].amount == 0 and by_model["c"].eligible
    assert by_model["d"].amount == 0 and by_model["d"].reason is IneligibleReason.NOT_ORIGINAL
    assert by_model["e"].reason is IneligibleReason.MISSING_SCORE
    assert sum(line.amount for line in allocation.lines) == 1_000_000
    assert by_model["a"].rate == Fraction(1, 4)


def test_pool_rounding_of_thirds_goes_by_largest_remainder() -> None:
    results = [ModelResult(m, m, mmc=0.5) for m in ("a", "b", "c")]
    allocation = allocate_pool(results, PoolPolicy(100))
    assert [line.amount for line in allocation.lines] == [34, 33, 33]


def test_pool_by_leave_one_out_mixed_with_corr() -> None:
    results = [
        ModelResult("a", "alice", corr=0.5, loo=0.25),
        ModelResult("b", "bob", corr=0.25, loo=0.25),
    ]
    policy = PoolPolicy(900, source=ContributionSource.LOO, source_weight=1, corr_weight=1)
    allocation = allocate(results, policy)
    assert [line.amount for line in allocation.lines] == [540, 360]  # 0.75 : 0.5
    assert allocation.policy is PolicyName.POOL


def test_pool_with_no_positive_contribution_keeps_the_pool() -> None:
    results = [ModelResult("a", "alice", mmc=-0.1), ModelResult("b", "bob", mmc=0.0)]
    allocation = allocate_pool(results, PoolPolicy(5_000))
    assert [line.amount for line in allocation.lines] == [0, 0]
    assert allocation.unallocated == 5_000


# --- stake ------------------------------------------------------------------------------------------


def check_stake(results: list[ModelResult], policy: StakePolicy) -> None:
    """The stake invariants, checked against an exact recomputation of the formula."""
    allocation = allocate_stake(results, policy)
    eligible_stake = sum(line.stake for line in allocation.lines if line.eligible)
    factor = min(Fraction(1), Fraction(policy.threshold, eligible_stake)) if eligible_stake else Fraction(1)
    assert allocation.payout_factor == factor
    for result, line in zip(results, allocation.lines, strict=True):
        assert isinstance(line.amount, int)
        assert abs(line.amount) * 20 <= line.stake  # never more than 5% of the stake, either way
        if not line.eligible:
            assert line.amount == 0 and line.reason is not None
            continue
        terms = [
            (Fraction(policy.corr_weight), _exact(result.corr)),
            (Fraction(policy.mmc_weight), _exact(result.mmc)),
        ]
        combined = sum((w * v for w, v in terms if w != 0), Fraction(0))
        exact = result.stake * max(Fraction(-1, 20), min(Fraction(1, 20), factor * combined))
        assert abs(exact - line.amount) < 1  # the rounding moves less than one satoshi
        assert abs(line.amount) <= abs(exact)  # ... toward zero: never pays or burns more than the formula
        assert line.amount == 0 or (line.amount > 0) == (exact > 0)
    assert sum(line.amount for line in allocation.lines) == allocation.total_paid - allocation.total_burned


@settings(max_examples=200, deadline=None)
@given(
    results=model_results(),
    threshold=st.integers(min_value=1, max_value=10**14),
    corr_weight=weights,
    mmc_weight=weights,
    eligibility=rules,
)
def test_stake_amounts_are_bounded_by_five_percent_and_rounded_toward_zero(
    results, threshold, corr_weight, mmc_weight, eligibility
) -> None:
    check_stake(results, StakePolicy(threshold, corr_weight, mmc_weight, rules=eligibility))


def test_stake_invariants_over_ten_thousand_seeded_rounds() -> None:
    rng = random.Random(11)
    for _ in range(10_000):
        policy = StakePolicy(
            rng.randrange(1, 10 ** rng.randrange(1, 15)),
            rng.choice([Fraction(1, 2), 0, Fraction(rng.randrange(-8, 9), 4)]),
            rng.choice([2, 0, Fraction(rng.randrange(-8, 9), 2)]),
            rules=EligibilityRules(rng.random() < 0.3, rng.random() < 0.3, rng.random() < 0.5),
        )
        check_stake(random_results(rng), policy)


def test_stake_hand_computed_example() -> None:
    results = [
        ModelResult("a", "alice", corr=0.02, mmc=0.01, stake=100_000_000, original=True),  # 0.5*.02 + 2*.01 = 0.03
        ModelResult("b", "bob", corr=0.5, mmc=0.5, stake=100_000_000, original=True),  # clipped to +5%
        ModelResult("c", "carol", corr=-0.5, mmc=-0.5, stake=100_000_000, original=True),  # clipped to -5%
        ModelResult("d", "dave", corr=0.1, mmc=0.1, stake=100_000_000, original=False),
    ]
    allocation = allocate_stake(results, StakePolicy(threshold=10**12, rules=ORIGINALITY))
    assert allocation.payout_factor == 1
    assert [line.amount for line in allocation.lines] == [3_000_000, 5_000_000, -5_000_000, 0]
    assert allocation.total_paid == 8_000_000 and allocation.total_burned == 5_000_000
    assert allocation.lines[3].reason is IneligibleReason.NOT_ORIGINAL


def test_stake_payout_factor_scales_when_too_much_is_at_risk() -> None:
    results = [
        ModelResult("a", "alice", corr=0.0, mmc=0.01, stake=3_000, original=True),
        ModelResult("b", "bob", corr=0.0, mmc=0.01, stake=1_000, original=True),
        ModelResult("c", "carol", corr=0.0, mmc=0.01, stake=5_000, original=False),  # not at risk
    ]
    allocation = allocate_stake(results, StakePolicy(threshold=2_000, rules=ORIGINALITY))
    assert allocation.payout_factor == Fraction(1, 2)  # 2,000 / 4,000 at risk
    # 3,000 x 0.5 x 2 x 0.01 = 30 exactly in decimal; the float 0.01 is a hair above 0.01
    assert [line.amount for line in allocation.lines] == [30, 10, 0]


def test_stake_losses_round_toward_zero() -> None:
    results = [ModelResult("a", "alice", corr=0.0, mmc=-Fraction(1, 3), stake=1_000)]
    allocation = allocate_stake(results, StakePolicy(threshold=10**9, clip=1))
    assert allocation.lines[0].amount == -666  # -666.67 burns 666, not 667


# --- input validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        [ModelResult("a", "alice", mmc=0.1), ModelResult("a", "bob", mmc=0.1)],
        [ModelResult("", "alice", mmc=0.1)],
        [ModelResult("a", "alice", mmc=0.1, stake=-5)],
        [ModelResult("a", "alice", mmc=0.1, stake=1.5)],  # type: ignore[arg-type]
        [ModelResult("a", "alice", mmc=float("inf"))],
    ],
)
def test_bad_results_are_refused(bad: list[ModelResult]) -> None:
    with pytest.raises(InvalidArgument):
        allocate_pool(bad, PoolPolicy(100))
    with pytest.raises(InvalidArgument):
        allocate_stake(bad, StakePolicy(100))


def test_bad_policies_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        PoolPolicy(1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        PoolPolicy(-1)
    with pytest.raises(InvalidArgument):
        StakePolicy(0)
    with pytest.raises(InvalidArgument):
        StakePolicy(100, clip=Fraction(3, 2))
    with pytest.raises(InvalidArgument):
        StakePolicy(100, mmc_weight=float("nan"))
    with pytest.raises(InvalidArgument):
        PoolPolicy(100, source="fnc")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        allocate([], object())  # type: ignore[arg-type]


# --- zero payout reasons and failing closed ----------------------------------------------------------


def test_every_required_check_fails_closed_the_same_way() -> None:
    """Flagged -> NOT_X, unchecked (None) -> X_UNCHECKED, for originality exactly as for the others."""
    every = EligibilityRules(require_consistency=True, require_concordance=True, require_originality=True)
    cases = {
        "flagged-o": (dict(original=False, consistent=True, concordant=True), ZeroPayoutReason.NOT_ORIGINAL),
        "unknown-o": (dict(original=None, consistent=True, concordant=True), ZeroPayoutReason.ORIGINALITY_UNCHECKED),
        "flagged-c": (dict(original=True, consistent=False, concordant=True), ZeroPayoutReason.INCONSISTENT),
        "unknown-c": (dict(original=True, consistent=None, concordant=True), ZeroPayoutReason.CONSISTENCY_UNCHECKED),
        "flagged-k": (dict(original=True, consistent=True, concordant=False), ZeroPayoutReason.NOT_CONCORDANT),
        "unknown-k": (dict(original=True, consistent=True, concordant=None), ZeroPayoutReason.CONCORDANCE_UNCHECKED),
        "passed": (dict(original=True, consistent=True, concordant=True), None),
    }
    results = [ModelResult(m, m, corr=0.1, mmc=0.1, stake=1_000, **flags) for m, (flags, _) in cases.items()]
    for policy in (PoolPolicy(1_000, rules=every), StakePolicy(10**9, rules=every)):
        by_model = {line.model_id: line for line in allocate(results, policy).lines}
        for model, (_, reason) in cases.items():
            assert by_model[model].reason is reason, model
            assert by_model[model].zero_reason is reason, model
            assert (by_model[model].amount > 0) is (reason is None), model
    # not required: an unknown check does not matter
    lax = allocate_pool(results, PoolPolicy(700))
    assert all(line.eligible and line.amount == 100 for line in lax.lines)


def test_every_line_paying_nothing_has_a_reason() -> None:
    results = [
        ModelResult("paid", "p", corr=0.1, mmc=0.1, stake=1_000, original=True),
        ModelResult("unstaked", "p", corr=0.1, mmc=0.1, stake=0, original=True),
        ModelResult("negative", "p", corr=-0.1, mmc=-0.1, stake=1_000, original=True),
        ModelResult("tiny", "p", corr=0.0, mmc=1e-9, stake=1_000, original=True),
        ModelResult("constant", "p", corr=None, mmc=None, stake=1_000, original=True),
        ModelResult("copy", "p", corr=0.1, mmc=0.1, stake=1_000, original=False),
    ]
    stake = {line.model_id: line for line in allocate_stake(results, StakePolicy(10**9, rules=ORIGINALITY)).lines}
    assert stake["paid"].zero_reason is None and stake["paid"].amount > 0
    assert stake["unstaked"].zero_reason is ZeroPayoutReason.NOT_STAKED
    assert stake["negative"].zero_reason is ZeroPayoutReason.NON_POSITIVE_CONTRIBUTION
    assert stake["negative"].amount < 0  # a burn carries its reason too
    assert stake["tiny"].zero_reason is ZeroPayoutReason.ROUNDED_TO_ZERO and stake["tiny"].amount == 0
    assert stake["constant"].zero_reason is ZeroPayoutReason.MISSING_SCORE
    assert stake["copy"].zero_reason is ZeroPayoutReason.NOT_ORIGINAL
    pool = {line.model_id: line for line in allocate_pool(results, PoolPolicy(1_000, rules=ORIGINALITY)).lines}
    assert pool["unstaked"].zero_reason is None and pool["unstaked"].amount > 0  # the pool pays unstaked models
    assert pool["negative"].zero_reason is ZeroPayoutReason.NON_POSITIVE_CONTRIBUTION
    assert pool["tiny"].zero_reason is ZeroPayoutReason.ROUNDED_TO_ZERO


@settings(max_examples=200, deadline=None)
@given(results=model_results(), pool=st.integers(min_value=0, max_value=10**9), eligibility=rules)
def test_a_line_has_a_zero_reason_exactly_when_it_pays_nothing(results, pool, eligibility) -> None:
    for policy in (PoolPolicy(pool, rules=eligibility), StakePolicy(10**9, rules=eligibility)):
        for line in allocate(results, policy).lines:
            assert (line.zero_reason is None) is (line.amount > 0)
            if not line.eligible:
                assert line.zero_reason is line.reason
