"""Turning a scored round into satoshis per model: the ``pool`` and ``stake`` payout policies.

Scores arrive as floats; each is converted to the exact rational it stands for (``Fraction(float)``),
so every amount below is computed exactly and rounded once, by a stated rule:

- ``pool`` (the 2016 way): a fixed reward pool is split among eligible models in proportion to their
  positive contribution, with largest-remainder rounding: the amounts add up to the pool, to the
  satoshi. If no model contributed positively nothing is allocated and the pool stays with the platform.
- ``stake`` (today's way): amount = stake x clip(payout_factor x (corr_w CORR + mmc_w MMC), -c, +c),
  payout_factor = min(1, threshold / total at risk). The result is rounded toward zero, so the platform
  never pays more than the formula and a burn never takes more than c (5%) of the stake.

Where the tournament requires a check (originality, consistency, concordance), one rule applies to all
three: only a PASSED check is eligible; FLAGGED is ``NOT_ORIGINAL``/``INCONSISTENT``/``NOT_CONCORDANT``,
and an unchecked result (SKIPPED, missing) is ``*_UNCHECKED``: money is not paid on an unknown.
Every line whose amount is not positive carries a ``ZeroPayoutReason``, so a participant (and the
public board) can tell why a model got nothing.

Significance (``require_significance``): a positive score is paid only when the lower bound of its
interval is above zero; otherwise the line gets 0 with reason ``NOT_SIGNIFICANT``. The lower bound of
``sum w_m x metric_m`` is ``sum w_m x (ci_low_m if w_m > 0 else ci_high_m)`` from scoring's per-metric
era-bootstrap intervals: exact for one metric, conservative for a mix. Measured with the tournament
simulator (``crowdquant simulate``), this keeps noise that happens to score well in a round from being
paid like skill. Burns (stake policy) are not gated: a loss is taken as measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

from shared.errors import InvalidArgument
from shared.money import Satoshis, largest_remainder_split, require_satoshis

Number = int | float | Fraction


class PolicyName(StrEnum):
    POOL = "pool"
    STAKE = "stake"


class ContributionSource(StrEnum):
    """Which per-model contribution the pool is shared by."""

    MMC = "mmc"
    """Meta-model contribution."""
    LOO = "loo"
    """Leave-one-out gain: how much the meta model loses without this model."""
    CORR = "corr"
    """The model's own live CORR."""


class ZeroPayoutReason(StrEnum):
    """Why a model's payout is 0 (or negative: a burn), one machine-readable code per cause."""

    NOT_ORIGINAL = "NOT_ORIGINAL"
    """Flagged by the originality check (a near copy of an earlier submission)."""
    ORIGINALITY_UNCHECKED = "ORIGINALITY_UNCHECKED"
    """Originality is required and was not checked (check off, or no result)."""
    INCONSISTENT = "INCONSISTENT"
    CONSISTENCY_UNCHECKED = "CONSISTENCY_UNCHECKED"
    NOT_CONCORDANT = "NOT_CONCORDANT"
    CONCORDANCE_UNCHECKED = "CONCORDANCE_UNCHECKED"
    MISSING_SCORE = "MISSING_SCORE"
    """No value for a metric the policy pays on (e.g. constant predictions have no CORR)."""
    NOT_STAKED = "NOT_STAKED"
    """Stake policy: nothing at stake, so nothing to pay or burn."""
    NON_POSITIVE_CONTRIBUTION = "NON_POSITIVE_CONTRIBUTION"
    """The score the policy pays on is <= 0 (pool: no share; stake: a burn or nothing)."""
    ROUNDED_TO_ZERO = "ROUNDED_TO_ZERO"
    """A positive score whose exact amount is under one satoshi."""
    BELOW_DUST_CARRIED = "BELOW_DUST_CARRIED"
    """Allocated, but the model's payable balance is under its address's dust limit: it is carried to a
    later batch (set when read, not when allocated: it depends on the balance and the batches)."""
    NOT_SIGNIFICANT = "NOT_SIGNIFICANT"
    """A positive score whose interval does not lie above zero: it may be luck, so it is not paid."""


IneligibleReason = ZeroPayoutReason  # the reasons that make a model ineligible are the first seven

_CHECK_REASONS = {
    "original": (ZeroPayoutReason.NOT_ORIGINAL, ZeroPayoutReason.ORIGINALITY_UNCHECKED),
    "consistent": (ZeroPayoutReason.INCONSISTENT, ZeroPayoutReason.CONSISTENCY_UNCHECKED),
    "concordant": (ZeroPayoutReason.NOT_CONCORDANT, ZeroPayoutReason.CONCORDANCE_UNCHECKED),
}


@dataclass(frozen=True)
class ModelResult:
    """What allocation needs to know about one model in one round.

    ``original``/``consistent``/``concordant`` are True (passed), False (flagged) or None (not
    checked); where the tournament requires a check, only True is eligible.
    """

    model_id: str
    participant_id: str
    corr: float | None = None
    mmc: float | None = None
    loo: float | None = None
    stake: Satoshis = 0
    original: bool | None = None
    consistent: bool | None = None
    concordant: bool | None = None
    corr_interval: tuple[float, float] | None = None
    """Era-bootstrap interval (low, high) of ``corr``; None when not known."""
    mmc_interval: tuple[float, float] | None = None
    """Era-bootstrap interval (low, high) of ``mmc``; None when not known."""


@dataclass(frozen=True)
class EligibilityRules:
    require_consistency: bool = False
    require_concordance: bool = False
    require_originality: bool = False


def _fraction(value: Number, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
        raise InvalidArgument(f"{name} must be a number, not {type(value).__name__}", metadata={"field": name})
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgument(f"{name} must be finite, not {value}", metadata={"field": name})
    return Fraction(value)


@dataclass(frozen=True)
class PoolPolicy:
    """Share ``pool`` satoshis by ``source_weight x source + corr_weight x CORR`` (positive part only)."""

    pool: Satoshis
    source: ContributionSource = ContributionSource.MMC
    source_weight: Number = 1
    corr_weight: Number = 0
    rules: EligibilityRules = field(default_factory=EligibilityRules)
    require_significance: bool = False

    def __post_init__(self) -> None:
        require_satoshis(self.pool, "pool")
        if self.source not in set(ContributionSource):
            raise InvalidArgument(
                f"pool source must be one of {', '.join(ContributionSource)}, not {self.source!r}",
                metadata={"field": "source"},
            )
        object.__setattr__(self, "source", ContributionSource(self.source))
        object.__setattr__(self, "source_weight", _fraction(self.source_weight, "source_weight"))
        object.__setattr__(self, "corr_weight", _fraction(self.corr_weight, "corr_weight"))


@dataclass(frozen=True)
class StakePolicy:
    """stake x clip(payout_factor x (corr_weight CORR + mmc_weight MMC), -clip, +clip).

    ``threshold`` (satoshis) sets the payout factor min(1, threshold / total at risk), which caps the
    round's total exposure; total at risk is the sum of the stakes of eligible models.
    """

    threshold: Satoshis
    corr_weight: Number = Fraction(1, 2)
    mmc_weight: Number = 2
    clip: Number = Fraction(1, 20)
    rules: EligibilityRules = field(default_factory=EligibilityRules)
    require_significance: bool = False

    def __post_init__(self) -> None:
        require_satoshis(self.threshold, "threshold", allow_zero=False)
        object.__setattr__(self, "corr_weight", _fraction(self.corr_weight, "corr_weight"))
        object.__setattr__(self, "mmc_weight", _fraction(self.mmc_weight, "mmc_weight"))
        clip = _fraction(self.clip, "clip")
        if not 0 < clip <= 1:
            raise InvalidArgument(f"clip must be in (0, 1], not {clip}", metadata={"field": "clip"})
        object.__setattr__(self, "clip", clip)


@dataclass(frozen=True)
class AllocationLine:
    """One model's outcome, with the inputs that decided it (kept for the participant and the auditor).

    ``score`` is the weighted contribution (None when a needed score is missing); ``rate`` is, for the
    stake policy, the clipped payout_factor x score applied to the stake, and for the pool policy the
    model's exact share of the pool. ``amount`` is signed: negative is a burn from the stake.
    """

    model_id: str
    participant_id: str
    corr: float | None
    mmc: float | None
    loo: float | None
    stake: Satoshis
    score: Fraction | None
    rate: Fraction
    amount: Satoshis
    eligible: bool
    reason: ZeroPayoutReason | None  # why not eligible (None: eligible)
    zero_reason: ZeroPayoutReason | None = None  # why the amount is not positive (None: paid)
    score_low: Fraction | None = None
    """Lower bound of ``score``'s interval, when the policy requires significance (else None)."""


@dataclass(frozen=True)
class Allocation:
    policy: PolicyName
    lines: tuple[AllocationLine, ...]
    pool: Satoshis = 0
    """Pool policy: the pool being shared (0 for the stake policy)."""
    payout_factor: Fraction = Fraction(1)
    """Stake policy: min(1, threshold / total at risk) (1 for the pool policy)."""

    @property
    def total_paid(self) -> Satoshis:
        """Satoshis credited to participants (sum of positive amounts)."""
        return sum(line.amount for line in self.lines if line.amount > 0)

    @property
    def total_burned(self) -> Satoshis:
        """Satoshis taken from stakes (sum of negative amounts, as a positive number)."""
        return -sum(line.amount for line in self.lines if line.amount < 0)

    @property
    def unallocated(self) -> Satoshis:
        """Pool policy: what stays with the platform (the whole pool when nobody contributed)."""
        return self.pool - self.total_paid if self.policy is PolicyName.POOL else 0


def _score(value: float | None, name: str, model_id: str) -> Fraction | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None  # NaN is what a correlation of constant predictions gives: no score, not an error
    return _fraction(value, f"{name} of model {model_id}")


def _check(results: Sequence[ModelResult]) -> None:
    seen: set[str] = set()
    for r in results:
        if not r.model_id or not r.participant_id:
            raise InvalidArgument(
                "every model result needs a model_id and a participant_id", metadata={"field": "model_id"}
            )
        if r.model_id in seen:
            raise InvalidArgument(
                f"model {r.model_id} appears twice in the round's results",
                metadata={"field": "model_id", "model": r.model_id},
            )
        seen.add(r.model_id)
        require_satoshis(r.stake, f"stake of model {r.model_id}")
        for name in ("corr", "mmc", "loo"):
            _score(getattr(r, name), name, r.model_id)  # an infinite score is a scoring bug: refuse it


def _ineligible(r: ModelResult, rules: EligibilityRules) -> ZeroPayoutReason | None:
    """The first required check that did not pass: flagged or unchecked, the same rule for every check."""
    required = {
        "original": rules.require_originality,
        "consistent": rules.require_consistency,
        "concordant": rules.require_concordance,
    }
    for name, (flagged, unchecked) in _CHECK_REASONS.items():
        if not required[name]:
            continue
        outcome = getattr(r, name)
        if outcome is False:
            return flagged
        if outcome is not True:
            return unchecked
    return None


def zero_payout_reason(
    reason: ZeroPayoutReason | None, score: Fraction | None, amount: int, stake: int, policy: PolicyName
) -> ZeroPayoutReason | None:
    """Why an allocated amount is not positive: ineligible, not staked, non-positive score or rounding."""
    if amount > 0:
        return None
    if reason is not None:
        return reason
    if score is None:
        return ZeroPayoutReason.MISSING_SCORE
    if policy is PolicyName.STAKE and stake == 0:
        return ZeroPayoutReason.NOT_STAKED
    if score <= 0:
        return ZeroPayoutReason.NON_POSITIVE_CONTRIBUTION
    return ZeroPayoutReason.ROUNDED_TO_ZERO


def _weighted(terms: Sequence[tuple[Fraction, float | None, str]], model_id: str) -> Fraction | None:
    """Sum of weight x score over terms with a non-zero weight; None if one of those scores is missing."""
    total = Fraction(0)
    for weight, value, name in terms:
        if weight == 0:
            continue
        score = _score(value, name, model_id)
        if score is None:
            return None
        total += weight * score
    return total


def _lower_bound(terms: Sequence[tuple[Fraction, tuple[float, float] | None, str]], model_id: str) -> Fraction | None:
    """Lower bound of sum weight x metric from each metric's interval; None if a needed interval is unknown."""
    total = Fraction(0)
    for weight, interval, name in terms:
        if weight == 0:
            continue
        if interval is None:
            return None
        bound = _score(interval[0] if weight > 0 else interval[1], f"{name} interval", model_id)
        if bound is None:
            return None
        total += weight * bound
    return total


def _significance(
    r: ModelResult,
    score: Fraction | None,
    terms: Sequence[tuple[Fraction, tuple[float, float] | None, str]],
    required: bool,
) -> tuple[Fraction | None, ZeroPayoutReason | None]:
    """(lower bound, NOT_SIGNIFICANT or None) for a model whose positive score must be significant."""
    if not required or score is None:
        return None, None
    low = _lower_bound(terms, r.model_id)
    if score > 0 and (low is None or low <= 0):
        return low, ZeroPayoutReason.NOT_SIGNIFICANT
    return low, None


def _line(
    r: ModelResult,
    score: Fraction | None,
    rate: Fraction,
    amount: int,
    reason: ZeroPayoutReason | None,
    policy: PolicyName,
    score_low: Fraction | None = None,
    not_significant: bool = False,
) -> AllocationLine:
    return AllocationLine(
        r.model_id,
        r.participant_id,
        r.corr,
        r.mmc,
        r.loo,
        int(r.stake),
        score,
        rate,
        amount,
        reason is None,
        reason,
        ZeroPayoutReason.NOT_SIGNIFICANT
        if not_significant and amount <= 0
        else zero_payout_reason(reason, score, amount, int(r.stake), policy),
        score_low,
    )


def allocate_pool(results: Sequence[ModelResult], policy: PoolPolicy) -> Allocation:
    """Split ``policy.pool`` among eligible models in proportion to their positive contribution."""
    _check(results)
    source_weight, corr_weight = Fraction(policy.source_weight), Fraction(policy.corr_weight)
    scored: list[tuple[ModelResult, Fraction | None, ZeroPayoutReason | None, Fraction | None, bool]] = []
    for r in results:
        source_value, source_interval = {
            ContributionSource.MMC: (r.mmc, r.mmc_interval),
            ContributionSource.LOO: (r.loo, None),
            ContributionSource.CORR: (r.corr, r.corr_interval),
        }[policy.source]
        score = _weighted(
            [(source_weight, source_value, policy.source.value), (corr_weight, r.corr, "corr")], r.model_id
        )
        reason = _ineligible(r, policy.rules) or (ZeroPayoutReason.MISSING_SCORE if score is None else None)
        low, not_significant = _significance(
            r,
            score,
            [(source_weight, source_interval, policy.source.value), (corr_weight, r.corr_interval, "corr")],
            policy.require_significance and reason is None,
        )
        scored.append((r, score, reason, low, not_significant is not None))
    weights = [
        max(score, Fraction(0)) if reason is None and score is not None and not gated else Fraction(0)
        for _, score, reason, _, gated in scored
    ]
    positive = sum(weights, Fraction(0))
    amounts = largest_remainder_split(policy.pool, weights) if positive > 0 else [0] * len(scored)
    lines = tuple(
        _line(r, score, weight / positive if positive > 0 else Fraction(0), amount, reason, PolicyName.POOL, low, gated)
        for (r, score, reason, low, gated), weight, amount in zip(scored, weights, amounts, strict=True)
    )
    return Allocation(PolicyName.POOL, lines, pool=policy.pool)


def allocate_stake(results: Sequence[ModelResult], policy: StakePolicy) -> Allocation:
    """Pay or burn each eligible stake by its clipped score, rounded toward zero."""
    _check(results)
    corr_weight, mmc_weight = Fraction(policy.corr_weight), Fraction(policy.mmc_weight)
    clip = Fraction(policy.clip)
    scored: list[tuple[ModelResult, Fraction | None, ZeroPayoutReason | None]] = []
    for r in results:
        score = _weighted([(corr_weight, r.corr, "corr"), (mmc_weight, r.mmc, "mmc")], r.model_id)
        reason = _ineligible(r, policy.rules) or (ZeroPayoutReason.MISSING_SCORE if score is None else None)
        scored.append((r, score, reason))
    at_risk = sum(int(r.stake) for r, _, reason in scored if reason is None)
    payout_factor = min(Fraction(1), Fraction(policy.threshold, at_risk)) if at_risk else Fraction(1)
    lines = []
    for r, score, reason in scored:
        if reason is not None or score is None:
            lines.append(_line(r, score, Fraction(0), 0, reason, PolicyName.STAKE))
            continue
        low, not_significant = _significance(
            r,
            score,
            [(corr_weight, r.corr_interval, "corr"), (mmc_weight, r.mmc_interval, "mmc")],
            policy.require_significance and int(r.stake) > 0,
        )
        if not_significant is not None:
            lines.append(_line(r, score, Fraction(0), 0, None, PolicyName.STAKE, low, True))
            continue
        rate = max(-clip, min(clip, payout_factor * score))
        lines.append(_line(r, score, rate, int(int(r.stake) * rate), None, PolicyName.STAKE, low))  # int() truncates
    return Allocation(PolicyName.STAKE, tuple(lines), payout_factor=payout_factor)


def allocate(results: Sequence[ModelResult], policy: PoolPolicy | StakePolicy) -> Allocation:
    """Apply whichever policy the tournament is configured with."""
    if isinstance(policy, PoolPolicy):
        return allocate_pool(results, policy)
    if isinstance(policy, StakePolicy):
        return allocate_stake(results, policy)
    raise InvalidArgument(f"unknown payout policy {type(policy).__name__}", metadata={"field": "policy"})
