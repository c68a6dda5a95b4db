"""What payouts knows of the other services: rounds, tournaments and their rules, models, submissions, scores.

Plain values: ``peers.py`` reads them from submissions and scoring and hands them to the use cases,
which never see a protobuf message. Enumerations travel by name without their proto prefix (a round
state ``"SCORED"``, a contribution metric ``"CORR"``); a policy is ``"pool"`` or ``"stake"``, ``""``
when unset, or the number of a value this service does not know (refused where it is used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RoundRef:
    tournament_id: str
    round_number: int


@dataclass(frozen=True)
class RoundInfo:
    ref: RoundRef
    state: str  # OPEN, CLOSED, RESOLVED, SCORED, PAID (or UNSPECIFIED)


@dataclass(frozen=True)
class ModelInfo:
    model_id: str
    participant_id: str
    tournament_id: str
    payout_address: str = ""


@dataclass(frozen=True)
class CheckResult:
    """An upload check of a submission: passed True, flagged False, anything else (not run) None."""

    passed: bool | None = None
    reason: str = ""
    value: float = 0.0
    threshold: float = 0.0


@dataclass(frozen=True)
class SubmissionInfo:
    model_id: str
    participant_id: str
    originality: CheckResult = field(default_factory=CheckResult)
    concordance: CheckResult = field(default_factory=CheckResult)


@dataclass(frozen=True)
class MetricScore:
    """A round figure over the live eras: mean, its interval, and (logloss) the consistency share."""

    mean: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    consistency: float = math.nan


@dataclass(frozen=True)
class ModelScore:
    model_id: str
    participant_id: str
    display_name: str = ""
    corr: MetricScore | None = None
    mmc: MetricScore | None = None
    logloss: MetricScore | None = None
    leave_one_out_gain: float = math.nan
    stake_satoshis: int = 0  # the stake scoring weighed the meta model with


@dataclass(frozen=True)
class PoolRules:
    pool_satoshis: int = 0
    contribution_metric: str = ""  # MMC (default), CORR, LEAVE_ONE_OUT_GAIN, WEIGHTED_MIX
    mmc_weight: float = 0.0
    corr_weight: float = 0.0


@dataclass(frozen=True)
class StakeRules:
    payout_threshold_satoshis: int = 0
    corr_weight: float = 0.0
    mmc_weight: float = 0.0
    clip: float = 0.0


@dataclass(frozen=True)
class PayoutRules:
    policy: str = ""
    require_consistency: bool = False
    require_concordance: bool = False
    require_originality: bool = True  # rules stored before the field existed require it
    significance_required: bool = False
    pool: PoolRules = field(default_factory=PoolRules)
    stake: StakeRules = field(default_factory=StakeRules)


@dataclass(frozen=True)
class ConsistencyRules:
    judged: bool = True  # False when the tournament's consistency check is OFF
    min_consistency: float = 0.0
    benchmark_logloss: float = 0.0


@dataclass(frozen=True)
class TournamentInfo:
    tournament_id: str
    network: str
    payout: PayoutRules = field(default_factory=PayoutRules)
    consistency: ConsistencyRules = field(default_factory=ConsistencyRules)
    payout_parameters: dict[str, bytes] = field(default_factory=dict)
    """The payout rules as an allocation stores them, by policy name (its rules with that policy set)."""
