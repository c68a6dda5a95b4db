"""Run the demo's cast for N rounds through the services' own scoring and allocation code.

Pure: no database, no gRPC server, no Bitcoin. The parts that decide money are the services' own:
the data generator, the demo's participants (``crowdquant.demo.participants``), the originality
check of submissions, scoring's ``compute`` (meta model, CORR/MMC, era-bootstrap intervals) and
payouts' allocation (the policy built from the tournament's rules exactly as the payouts service
builds it). Only the transport is left out.

Rounds are scored on their LIVE rows only (the rows that decide payouts), over six live eras.

True skill: a model's expected live CORR (mean per-era CORR), measured on fresh rounds of the same
generator with five times the live rows (30 eras each) that no simulated round uses. CORR and not MMC
because CORR is the model's own predictive value, what a participant controls. The expected MMC is
measured too and shown beside it: in this cast it does not tell skill from no skill even in
expectation (the honest models are noisy views of one linear signal; orthogonalised to the meta
model, what is left is mostly each participant's own noise), so a policy paying MMC cannot follow
skill, whatever it does with luck (README "Paying for skill" has the figures). Copies are given a
true skill of 0: what they upload is the work of the model they copy, already in the meta model.
The constant benchmark has no CORR (ranks of a constant are undefined): 0 too.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from crowdquant.common.v1 import common_pb2
from crowdquant.demo import participants as cast
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from services.payouts import peers as payout_peers
from services.payouts.domain import allocation as policy_rules
from services.payouts.usecases import allocation as payout_path
from services.scoring.api.convert import compute
from services.scoring.domain.results import RoundInputs
from services.submissions.api.rules import originality_rule, with_defaults
from services.submissions.domain.dataset import DatasetSpec, Split, generate
from services.submissions.domain.originality import EarlierSubmissions, check_originality
from shared.errors import InvalidArgument
from shared.rounds import RoundKey

TOURNAMENT = "simulation"
LIVE_ERAS = 6
SKILL_LIVE_FACTOR = 5
SIZES: dict[str, DatasetSpec] = {
    # the 2016 shape, live rows over six eras of 2,004 rows
    "full": DatasetSpec(n_live_eras=LIVE_ERAS),
    # like the demo's --small data (10 features, signal 0.4), with six live eras of 200 rows
    "small": DatasetSpec(
        n_training=6000,
        n_validation=3000,
        n_live=1200,
        n_features=10,
        n_training_eras=20,
        n_validation_eras=6,
        n_live_eras=LIVE_ERAS,
        signal=0.4,
    ),
}
POLICIES = ("default", "pool", "stake", "pool-corr", "pool-mmc-significant")
"""``default``: the tournament's default payout rules; ``pool``: the 2016 pool (MMC, every positive
contribution paid); ``stake``: today's stake policy (no significance rule); and the two halves of the
default, to measure each alone: ``pool-corr`` (shared by CORR, every positive one paid) and
``pool-mmc-significant`` (the 2016 MMC pool with the significance rule)."""
POOL_SATOSHIS = 5_000_000  # the demo's pool per round


@dataclass(frozen=True)
class SimulationConfig:
    participants: int = 50
    rounds: int = 20
    seed: int = 0
    size: str = "full"
    policy: str = "default"
    skill_rounds: int = 6
    """Fresh rounds (each with 5x the live rows) that measure every model's true skill."""
    pool_satoshis: int = POOL_SATOSHIS

    def validate(self) -> None:
        if self.size not in SIZES:
            raise InvalidArgument(
                f"size must be one of {', '.join(SIZES)}, not {self.size!r}", metadata={"field": "size"}
            )
        if self.policy not in POLICIES:
            raise InvalidArgument(
                f"policy must be one of {', '.join(POLICIES)}, not {self.policy!r}", metadata={"field": "policy"}
            )
        for name, low in (("participants", 5), ("rounds", 1), ("skill_rounds", 1), ("pool_satoshis", 1)):
            if getattr(self, name) < low:
                raise InvalidArgument(f"{name} must be >= {low}, got {getattr(self, name)}", metadata={"field": name})


@dataclass
class ModelOutcome:
    """One model over the whole simulation: its kind, true skill and what each round gave it."""

    name: str
    kind: str
    stake: int
    true_skill: float = 0.0
    expected_corr: float = float("nan")  # measured on the fresh rounds (copies: their source's)
    expected_mmc: float = float("nan")
    corr: list[float] = field(default_factory=list)  # per round: live CORR (mean over eras)
    corr_interval: list[tuple[float, float]] = field(default_factory=list)  # per round: its era-bootstrap interval
    mmc: list[float] = field(default_factory=list)
    mmc_interval: list[tuple[float, float]] = field(default_factory=list)
    paid: list[int] = field(default_factory=list)  # per round, satoshis (negative: burned)
    reasons: list[str] = field(default_factory=list)  # per round: why it got nothing (ZeroPayoutReason; "" if paid)

    @property
    def total_paid(self) -> int:
        return sum(a for a in self.paid if a > 0)


@dataclass
class Simulation:
    config: SimulationConfig
    rules: sub_pb.TournamentRules
    models: list[ModelOutcome]
    pool_per_round: int

    @property
    def policy_name(self) -> str:
        return payout_peers.POLICY_NAMES[self.rules.payout.policy]


def tournament_rules(policy: str, pool_satoshis: int) -> sub_pb.TournamentRules:
    """The demo tournament's rules, with the payout rules of ``policy``, defaults filled in."""
    payout = sub_pb.PayoutRules(pool=common_pb2.PoolParameters(pool_satoshis=pool_satoshis), require_originality=True)
    if policy == "pool":
        payout.policy = common_pb2.PAYOUT_POLICY_POOL
        payout.pool.contribution_metric = common_pb2.CONTRIBUTION_METRIC_MMC
        payout.significance = sub_pb.PayoutRules.SIGNIFICANCE_OFF
    elif policy == "stake":
        payout.policy = common_pb2.PAYOUT_POLICY_STAKE
        payout.significance = sub_pb.PayoutRules.SIGNIFICANCE_OFF
    elif policy == "pool-corr":
        payout.pool.contribution_metric = common_pb2.CONTRIBUTION_METRIC_CORR
        payout.significance = sub_pb.PayoutRules.SIGNIFICANCE_OFF
    elif policy == "pool-mmc-significant":
        payout.pool.contribution_metric = common_pb2.CONTRIBUTION_METRIC_MMC
        payout.significance = sub_pb.PayoutRules.SIGNIFICANCE_REQUIRED
    rules = sub_pb.TournamentRules(
        upload=sub_pb.UploadRules(min_std=-1),  # the demo admits the constant 0.5 benchmark
        payout=payout,
    )
    return with_defaults(rules, common_pb2.TARGET_KIND_BINARY)


def demo_stakes(profiles: list[cast.Profile]) -> list[int]:
    """The demo's stakes: good participants and the prober stake, the others don't."""
    return [100_000 * (1 + i % 5) // 2 if p.kind in ("good", "prober") else 0 for i, p in enumerate(profiles)]


def _predictions(profiles: list[cast.Profile], spec: DatasetSpec, round_number: int) -> tuple[np.ndarray, object]:
    """Every model's final upload (tournament rows) for one generated round; copies copy the first good model."""
    data = generate(spec)
    tour = data.tournament()
    values = np.empty((len(profiles), tour.n_rows), dtype=np.float32)
    source = next((i for i, p in enumerate(profiles) if p.kind == "good"), None)
    for i, p in enumerate(profiles):
        if p.kind != "copy":
            values[i] = cast.predict(p, data, round_number)[1]
    for i, p in enumerate(profiles):
        if p.kind == "copy":
            values[i] = cast.near_copy(values[source], p.seed + round_number) if source is not None else 0.5
    return values, tour


def _originality(profiles: list[cast.Profile], values: np.ndarray, rules: sub_pb.TournamentRules) -> list[bool]:
    """The upload-time originality check, uploads in cast order with the copycats last (as in the demo)."""
    rule = originality_rule(rules)
    order = [i for i, p in enumerate(profiles) if p.kind != "copy"] + [
        i for i, p in enumerate(profiles) if p.kind == "copy"
    ]
    earlier = EarlierSubmissions.empty(values.shape[1])
    original = [True] * len(profiles)
    for i in order:
        original[i] = check_originality(values[i], earlier, rule).original
        earlier = earlier.with_submission(f"m{i}", values[i])
    return original


def _score(
    values: np.ndarray,
    tour: object,
    stakes: list[int],
    rules: sub_pb.TournamentRules,
    round_number: int,
    names: list[str],
) -> list:
    """Scoring's own ``compute`` over the live rows only."""
    live = tour.split == Split.LIVE  # type: ignore[attr-defined]
    ids = [f"m{i}" for i in range(len(names))]
    inputs = RoundInputs(
        key=RoundKey(TOURNAMENT, round_number),
        model_ids=ids,
        participants=[f"p{i}" for i in range(len(names))],
        names=dict(zip(ids, names, strict=True)),
        versions=[1] * len(ids),
        values=values[:, live],
        targets=tour.targets[live],  # type: ignore[attr-defined]
        eras=tour.eras[live],
        stakes=dict(zip(ids, stakes, strict=True)),  # type: ignore[attr-defined]
        policy=rules.scoring.meta_model_policy,
        binary=True,
        eps=rules.scoring.logloss_epsilon,
        resamples=rules.scoring.bootstrap_samples,
        confidence=rules.scoring.confidence_level,
        logloss_benchmark=rules.consistency.benchmark_logloss,
    )
    return compute(inputs).scores


def _check(passed: bool) -> sub_pb.CheckResult:
    outcome = sub_pb.CheckResult.OUTCOME_PASSED if passed else sub_pb.CheckResult.OUTCOME_FLAGGED
    return sub_pb.CheckResult(outcome=outcome, reason="" if passed else "not original: a near copy")


def true_skills(
    profiles: list[cast.Profile], config: SimulationConfig, stakes: list[int], rules: sub_pb.TournamentRules
) -> dict[str, np.ndarray]:
    """Expected live MMC and CORR of each model (mean per-era value) on fresh rounds with 5x the live
    rows, seeds that no simulated round uses."""
    base = SIZES[config.size]
    spec = replace(base, n_live=base.n_live * SKILL_LIVE_FACTOR, n_live_eras=LIVE_ERAS * SKILL_LIVE_FACTOR)
    per_round: dict[str, list[list[float]]] = {"mmc": [], "corr": []}
    for k in range(config.skill_rounds):
        number = 100_000 + k
        values, tour = _predictions(profiles, replace(spec, seed=config.seed * 1_000_003 + number), number)
        scores = _score(values, tour, stakes, rules, number, [p.name for p in profiles])
        for metric, rows in per_round.items():
            rows.append([getattr(s, metric).mean if s.HasField(metric) else np.nan for s in scores])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the constant's all-NaN column
        return {metric: np.nanmean(np.asarray(rows, dtype=np.float64), axis=0) for metric, rows in per_round.items()}


@dataclass(frozen=True)
class PlayedRound:
    """One simulated round, scored: what every policy's allocation starts from."""

    scores: list  # scoring's ModelScores, one per model in cast order
    original: list[bool]


def play(
    config: SimulationConfig, progress: Callable[[str, int, int], None] = lambda _s, _d, _t: None
) -> tuple[list[cast.Profile], list[PlayedRound], dict[str, np.ndarray]]:
    """Generate, predict, check and score every round, then measure every model's true skill.

    The meta model is weighted by the cast's initial stakes in every round, so that every policy is
    judged on the same rounds (under the stake policy burns would shrink a stake by at most 5% a round).
    """
    config.validate()
    profiles = cast.profiles(config.participants, n_features=SIZES[config.size].n_features, seed=config.seed)
    names = [p.name for p in profiles]
    stakes = demo_stakes(profiles)
    rules = tournament_rules("default", config.pool_satoshis)  # originality and scoring rules: every policy's
    played = []
    for r in range(1, config.rounds + 1):
        progress("rounds", r - 1, config.rounds)
        spec = replace(SIZES[config.size], seed=config.seed * 1_000_003 + r)
        values, tour = _predictions(profiles, spec, r)
        played.append(PlayedRound(_score(values, tour, stakes, rules, r, names), _originality(profiles, values, rules)))
    progress("rounds", config.rounds, config.rounds)
    progress("true skill", 0, 1)
    skills = true_skills(profiles, config, stakes, rules)
    progress("true skill", 1, 1)
    return profiles, played, skills


def _metric(scores: object, metric: str, part: str) -> float:
    return float(getattr(getattr(scores, metric), part)) if scores.HasField(metric) else float("nan")  # type: ignore[attr-defined]


def allocate_rounds(
    config: SimulationConfig, profiles: list[cast.Profile], played: list[PlayedRound], skills: dict[str, np.ndarray]
) -> Simulation:
    """Every played round through payouts' allocation under ``config.policy``, as the payouts service does."""
    rules = tournament_rules(config.policy, config.pool_satoshis)
    payout, consistency = payout_peers.payout_rules(rules.payout), payout_peers.consistency_rules(rules.consistency)
    policy_name = payout_path.policy_name("", payout)
    policy = payout_path.build_policy(policy_name, payout)
    models = [ModelOutcome(p.name, p.kind, s) for p, s in zip(profiles, demo_stakes(profiles), strict=True)]
    for rnd in played:
        submissions = {
            f"m{i}": payout_peers.submission_info(sub_pb.Submission(originality=_check(ok)))
            for i, ok in enumerate(rnd.original)
        }
        current = {f"m{i}": m.stake for i, m in enumerate(models)}
        scores = [payout_peers.model_score(s) for s in rnd.scores]  # as payouts reads them from scoring
        allocation = policy_rules.allocate(
            payout_path.results(scores, submissions, current, payout, consistency), policy
        )
        for m, line, s in zip(models, allocation.lines, rnd.scores, strict=True):
            m.mmc.append(_metric(s, "mmc", "mean"))
            m.corr.append(_metric(s, "corr", "mean"))
            m.corr_interval.append((_metric(s, "corr", "ci_low"), _metric(s, "corr", "ci_high")))
            m.mmc_interval.append((_metric(s, "mmc", "ci_low"), _metric(s, "mmc", "ci_high")))
            m.paid.append(line.amount)
            m.reasons.append(line.zero_reason.value if line.zero_reason is not None else "")
            if line.amount < 0:
                m.stake += line.amount  # a burn leaves the stake
    for m, corr, mmc in zip(models, skills["corr"], skills["mmc"], strict=True):
        m.expected_corr, m.expected_mmc = float(corr), float(mmc)
        m.true_skill = 0.0 if m.kind in ("copy", "constant") or not np.isfinite(corr) else float(corr)
    return Simulation(config, rules, models, config.pool_satoshis if policy_name == "pool" else 0)


def simulate(
    config: SimulationConfig,
    progress: Callable[[str, int, int], None] = lambda _s, _d, _t: None,
    policies: tuple[str, ...] = (),
) -> dict[str, Simulation]:
    """Play ``config.rounds`` rounds once and allocate them under each policy (``config.policy`` if none given)."""
    for name in policies:
        replace(config, policy=name).validate()
    profiles, played, skills = play(config, progress)
    return {
        name: allocate_rounds(replace(config, policy=name), profiles, played, skills)
        for name in policies or (config.policy,)
    }
