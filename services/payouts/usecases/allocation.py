"""Allocating a scored round: contributions from scoring, eligibility from submissions, money in the ledger.

One allocation per round and policy, with an id derived from both: asking again returns the stored
one, whatever the request id. Its money moves in one balanced ledger entry (also with a derived id):

- pool: ``platform:rewards`` is debited the pool share of every eligible model, each model's
  ``payable`` account credited its share (largest remainder: the shares add up to the pool exactly);
- stake: gains are credited to ``payable`` (paid out in Bitcoin batches) against ``platform:rewards``;
  burns are debited from the model's ``staked`` account and credited to ``platform:burned``.

CORR and MMC are the per-era means of the round's live eras (what scoring reports as each model's
round score); the leave-one-out gain is the learned stacker's. Consistency, where required, is also
a resolved live-era figure from scoring (never an upload check: it needs the hidden targets). Each
line keeps why a model was not eligible, quoting the check result or the resolved figure.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from services.payouts import faults, ledger
from services.payouts.domain import allocation as policy_rules
from services.payouts.domain import chart, ids
from services.payouts.domain.batching import DUST_LIMITS
from services.payouts.domain.tournaments import (
    ConsistencyRules,
    ModelScore,
    PayoutRules,
    RoundRef,
    SubmissionInfo,
)
from services.payouts.peers import Peers
from services.payouts.store import allocations as repo
from services.payouts.store import batches as batch_repo
from services.payouts.store.uow import unit_of_work
from shared.bitcoin_address import decode_address
from shared.db import Database
from shared.errors import FailedPrecondition, InvalidArgument, NotFound

POLICIES = ("pool", "stake")
_PAYABLE_STATES = ("SCORED", "PAID")
Reason = policy_rules.ZeroPayoutReason
_CHECKS = {  # reason -> (label, the submission's check, flagged or unchecked)
    Reason.NOT_ORIGINAL: ("not original", "originality", True),
    Reason.ORIGINALITY_UNCHECKED: ("originality unchecked", "originality", False),
    Reason.NOT_CONCORDANT: ("not concordant", "concordance", True),
    Reason.CONCORDANCE_UNCHECKED: ("concordance unchecked", "concordance", False),
}
_OTHER_SUBMISSION = re.compile(r"with earlier submission (\S+ v\d+)")


def require_ref(ref: RoundRef) -> None:
    if not ref.tournament_id or ref.round_number < 1:
        raise InvalidArgument("round: tournament_id and round_number >= 1 are required", metadata={"field": "round"})


def policy_name(requested: str, rules: PayoutRules) -> str:
    """The policy asked for, else the tournament's, else pool ("" is unset; an unknown value is refused)."""
    value = requested or rules.policy or "pool"
    if value not in POLICIES:
        raise InvalidArgument(f"policy: unknown payout policy {value}", metadata={"field": "policy"})
    return value


def _mean(scores: ModelScore, metric: str) -> float | None:
    value = getattr(scores, metric)
    if value is None:
        return None
    return value.mean if math.isfinite(value.mean) else None


def _interval(scores: ModelScore, metric: str) -> tuple[float, float] | None:
    value = getattr(scores, metric)
    if value is None:
        return None
    return (value.ci_low, value.ci_high) if math.isfinite(value.ci_low) and math.isfinite(value.ci_high) else None


def resolved_consistency(scores: ModelScore, rules: ConsistencyRules) -> bool | None:
    """The 2017 rule judged at resolve: share of live eras whose logloss beats the benchmark >= the minimum.

    The share is scoring's logloss consistency over the round's live eras (against the tournament's
    consistency.benchmark_logloss). None when not judged: the rule is OFF, or there is no logloss
    (graded targets); a tournament that requires consistency then treats the model as failing it.
    """
    if not rules.judged or scores.logloss is None:
        return None
    share = scores.logloss.consistency
    if not math.isfinite(share):
        return None
    return share >= rules.min_consistency


def _consistency_detail(scores: ModelScore | None, rules: ConsistencyRules) -> str:
    if scores is None or scores.logloss is None or resolved_consistency(scores, rules) is None:
        return "not consistent: no resolved live-era consistency (required by the tournament)"
    return (
        f"not consistent: logloss beat {rules.benchmark_logloss:.4f} in {scores.logloss.consistency:.0%} of "
        f"the live eras (needs {rules.min_consistency:.0%})"
    )


@dataclass(frozen=True)
class ReasonDetail:
    """A zero payout's code with a sentence and, where there is one, the deciding statistic."""

    code: policy_rules.ZeroPayoutReason
    detail: str
    value: float | None = None
    threshold: float | None = None
    other_submission: str = ""


def explain(
    line: policy_rules.AllocationLine,
    submission: SubmissionInfo | None,
    scores: ModelScore | None,
    consistency: ConsistencyRules,
) -> ReasonDetail | None:
    """Why a line pays nothing, quoting the check result or the resolved figure that decided it."""
    code = line.zero_reason
    if code is None:
        return None
    if code in (Reason.INCONSISTENT, Reason.CONSISTENCY_UNCHECKED):
        judged = scores is not None and resolved_consistency(scores, consistency) is not None
        return ReasonDetail(
            code,
            _consistency_detail(scores, consistency),
            scores.logloss.consistency if judged and scores is not None and scores.logloss is not None else None,
            consistency.min_consistency,
        )
    if code in _CHECKS:
        label, field_name, flagged = _CHECKS[code]
        check = getattr(submission, field_name) if submission is not None else None
        text = check.reason if check is not None else ""
        if not flagged:
            why = f"the {field_name} check was not run ({text})" if text else f"no {field_name} result"
            return ReasonDetail(code, f"{label}: {why}; the tournament requires it, so nothing is paid on an unknown")
        if not text:
            return ReasonDetail(code, f"{label}: the {field_name} check did not pass (required by the tournament)")
        found = _OTHER_SUBMISSION.search(text)
        return ReasonDetail(
            code,
            text if text.startswith(label) else f"{label}: {text}",
            check.value,
            check.threshold,
            found.group(1) if found else "",
        )
    score = float(line.score) if line.score is not None else None
    if code is Reason.MISSING_SCORE:
        return ReasonDetail(code, "no score for the policy's metric (e.g. constant predictions have no CORR)")
    if code is Reason.NOT_STAKED:
        return ReasonDetail(code, "not staked: the stake policy pays (or burns) only a stake at risk", 0.0)
    if code is Reason.NOT_SIGNIFICANT:
        low = float(line.score_low) if line.score_low is not None else None
        bound = "unknown" if low is None else f"{low:.6g}"
        return ReasonDetail(
            code,
            f"not significant: contribution {score:.6g}, but the lower bound of its interval "
            f"is {bound}, not above zero (it may be luck)",
            low,
            0.0,
        )
    if code is Reason.NON_POSITIVE_CONTRIBUTION:
        return ReasonDetail(code, f"contribution {score:.6g} is not positive", score, 0.0)
    return ReasonDetail(code, f"contribution {score:.3g} is worth less than 1 sat", score)


@dataclass
class AllocationView:
    row: Any  # its ``parameters`` are the payout rules it ran under, as stored (encoded by the peers)
    lines: list[Any]
    carried: dict[str, ReasonDetail] = field(default_factory=dict)  # model id -> below dust, carried over


def carried_over(amount: int, owed: int, dust_limit: int) -> ReasonDetail:
    """A paid line whose balance waits under the dust limit (read time: it depends on the batches)."""
    return ReasonDetail(
        Reason.BELOW_DUST_CARRIED,
        f"{amount:,} sat allocated; the payable balance of {owed:,} sat is below the dust limit of "
        f"{dust_limit:,} sat, so it is carried to the next batch",
        float(owed),
        float(dust_limit),
    )


def build_policy(name: str, rules: PayoutRules) -> policy_rules.PoolPolicy | policy_rules.StakePolicy:
    eligibility = policy_rules.EligibilityRules(
        require_consistency=rules.require_consistency,
        require_concordance=rules.require_concordance,
        require_originality=rules.require_originality,
    )
    significance = rules.significance_required
    if name == "pool":
        pool = rules.pool
        if pool.contribution_metric == "LEAVE_ONE_OUT_GAIN":
            return policy_rules.PoolPolicy(
                pool.pool_satoshis,
                policy_rules.ContributionSource.LOO,
                rules=eligibility,
                require_significance=significance,
            )
        if pool.contribution_metric == "CORR":
            return policy_rules.PoolPolicy(
                pool.pool_satoshis,
                policy_rules.ContributionSource.CORR,
                rules=eligibility,
                require_significance=significance,
            )
        if pool.contribution_metric == "WEIGHTED_MIX":
            return policy_rules.PoolPolicy(
                pool.pool_satoshis,
                policy_rules.ContributionSource.MMC,
                source_weight=pool.mmc_weight,
                corr_weight=pool.corr_weight,
                rules=eligibility,
                require_significance=significance,
            )
        return policy_rules.PoolPolicy(
            pool.pool_satoshis,
            policy_rules.ContributionSource.MMC,
            rules=eligibility,
            require_significance=significance,
        )
    stake = rules.stake
    return policy_rules.StakePolicy(
        stake.payout_threshold_satoshis or 1,
        corr_weight=stake.corr_weight or 0.5,
        mmc_weight=stake.mmc_weight or 2.0,
        clip=stake.clip or 0.05,
        rules=eligibility,
        require_significance=significance,
    )


def results(
    scores: list[ModelScore],
    submissions: dict[str, SubmissionInfo],
    stakes: dict[str, int],
    rules: PayoutRules,
    consistency: ConsistencyRules,
) -> list[policy_rules.ModelResult]:
    out = []
    for s in scores:
        submission = submissions.get(s.model_id)
        out.append(
            policy_rules.ModelResult(
                model_id=s.model_id,
                participant_id=s.participant_id,
                corr=_mean(s, "corr"),
                mmc=_mean(s, "mmc"),
                loo=s.leave_one_out_gain if math.isfinite(s.leave_one_out_gain) else None,
                stake=stakes.get(s.model_id, 0),
                original=submission.originality.passed if submission is not None else None,
                consistent=resolved_consistency(s, consistency),
                concordant=submission.concordance.passed if submission is not None else None,
                corr_interval=_interval(s, "corr"),
                mmc_interval=_interval(s, "mmc"),
            )
        )
    return out


def ledger_postings(result: policy_rules.Allocation) -> list[ledger.PostingSpec]:
    postings: list[ledger.PostingSpec] = []
    for line in result.lines:
        if line.amount > 0:
            postings.append(ledger.PostingSpec(chart.payable(line.participant_id, line.model_id), -line.amount))
        elif line.amount < 0:
            postings.append(ledger.PostingSpec(chart.staked(line.participant_id, line.model_id), -line.amount))
    if result.total_paid:
        postings.append(ledger.PostingSpec(chart.REWARDS, result.total_paid))
    if result.total_burned:
        postings.append(ledger.PostingSpec(chart.BURNED, -result.total_burned))
    return postings


def _line_rows(
    result: policy_rules.Allocation,
    scores: list[ModelScore],
    submissions: dict[str, SubmissionInfo],
    consistency: ConsistencyRules,
) -> list[dict[str, Any]]:
    names = {s.model_id: s.display_name for s in scores}
    by_model = {s.model_id: s for s in scores}
    rows: list[dict[str, Any]] = []
    for line in result.lines:
        why = explain(line, submissions.get(line.model_id), by_model.get(line.model_id), consistency)
        rows.append(
            {
                "model_id": line.model_id,
                "participant_id": line.participant_id,
                "display_name": names.get(line.model_id, ""),
                "contribution": float(line.score) if line.score is not None else None,
                "corr": line.corr,
                "mmc": line.mmc,
                "loo": line.loo,
                "stake": line.stake,
                "amount": line.amount,
                "eligible": line.eligible,
                "reason": why.detail if why else "",
                "reason_code": why.code.value if why else "",
                "reason_value": why.value if why else None,
                "reason_threshold": why.threshold if why else None,
                "reason_subject": why.other_submission if why else "",
            }
        )
    return rows


async def load(database: Database, tournament_id: str, round_number: int, policy: str) -> AllocationView | None:
    async with database.connect() as conn:
        row = await repo.get(conn, tournament_id, round_number, policy)
        if row is None:
            return None
        lines = await repo.lines(conn, row.allocation_id)
    return AllocationView(row, lines)


def check_weighed_stakes(scores: list[ModelScore], stakes: dict[str, int], ref: RoundRef) -> None:
    """Scoring must have weighed the meta model with the stakes the ledger holds at risk, or MMC and
    every contribution would be computed against another meta model than the one paid for."""
    for s in scores:
        held = stakes.get(s.model_id, 0)
        if s.stake_satoshis != held:
            raise FailedPrecondition(
                f"round {ref.round_number} of {ref.tournament_id} was scored with a stake of {s.stake_satoshis} sat "
                f"for model {s.model_id}, but the ledger holds {held} sat at risk: score the round again with "
                "payouts' stakes (GetRoundStakes), as the pipeline does",
                reason="STAKES_DIFFER",
                metadata={"model_id": s.model_id, "scored": str(s.stake_satoshis), "ledger": str(held)},
            )


async def allocate_round(database: Database, peers: Peers, ref: RoundRef, requested_policy: str) -> AllocationView:
    """Allocate the round under its policy once; a repeat returns the stored allocation."""
    require_ref(ref)
    rnd = await peers.round(ref)
    if rnd.state not in _PAYABLE_STATES:
        state = rnd.state
        raise FailedPrecondition(
            f"round {ref.round_number} of {ref.tournament_id} is {state}: it is allocated once scored",
            reason="ROUND_NOT_SCORED",
            metadata={"current_state": state},
        )
    tournament = await peers.tournament(ref.tournament_id)
    rules = tournament.payout
    name = policy_name(requested_policy, rules)
    existing = await load(database, ref.tournament_id, ref.round_number, name)
    if existing is not None:
        existing.carried = await carried_lines(database, peers, existing)
        return existing
    scores = [s async for s in peers.round_scores(ref)]
    submissions = await peers.latest_submissions(ref)
    allocation_id = ids.allocation(ref.tournament_id, ref.round_number, name)
    async with unit_of_work(database) as conn:
        await repo.lock_round(conn, ref.tournament_id, ref.round_number)
        if await repo.get(conn, ref.tournament_id, ref.round_number, name) is None:
            await batch_repo.lock(conn)
            await ledger.open_accounts(conn, account_specs(scores, ref.tournament_id))
            stake_codes = {s.model_id: chart.staked(s.participant_id, s.model_id) for s in scores}
            found = await ledger.balances_of(conn, list(stake_codes.values()))
            stakes = {m: -found.get(code, 0) for m, code in stake_codes.items()}
            check_weighed_stakes(scores, stakes, ref)
            result = policy_rules.allocate(
                results(scores, submissions, stakes, rules, tournament.consistency), build_policy(name, rules)
            )
            postings = ledger_postings(result)
            entry_id = ids.allocation_entry(allocation_id) if postings else None
            if entry_id is not None:
                await ledger.post_entry(
                    conn,
                    ledger.EntrySpec(
                        id=entry_id,
                        kind="allocation",
                        postings=postings,
                        memo=f"{name} allocation of {ref.tournament_id} round {ref.round_number}",
                        metadata={
                            "allocation_id": str(allocation_id),
                            "tournament_id": ref.tournament_id,
                            "round_number": str(ref.round_number),
                            "policy": name,
                        },
                    ),
                )
            await repo.insert(
                conn,
                allocation_id=allocation_id,
                tournament_id=ref.tournament_id,
                round_number=ref.round_number,
                policy=name,
                parameters=tournament.payout_parameters[name],
                payout_factor=_fraction_string(result.payout_factor),
                total=sum(line.amount for line in result.lines),
                entry_id=entry_id,
                lines=_line_rows(result, scores, submissions, tournament.consistency),
            )
    faults.reach("allocation.recorded")
    view = await load(database, ref.tournament_id, ref.round_number, name)
    assert view is not None
    view.carried = await carried_lines(database, peers, view)
    return view


def account_specs(scores: list[ModelScore], tournament_id: str) -> list[ledger.AccountSpec]:
    """The platform's accounts and those of every scored model's participant."""
    by_owner: dict[str, dict[str, str]] = {}
    for s in scores:
        participant_id = chart.require_id(s.participant_id, "participant_id")
        by_owner.setdefault(participant_id, {})[chart.require_id(s.model_id, "model_id")] = tournament_id
    return [
        *chart.platform_specs(),
        *[spec for p, models in sorted(by_owner.items()) for spec in chart.participant_specs(p, models)],
    ]


def _fraction_string(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def fraction_value(text_value: str) -> float:
    return float(Fraction(text_value))


async def get_allocation(database: Database, peers: Peers, ref: RoundRef, requested_policy: str) -> AllocationView:
    require_ref(ref)
    if requested_policy:
        name = policy_name(requested_policy, PayoutRules())
    else:
        name = policy_name("", (await peers.tournament(ref.tournament_id)).payout)
    view = await load(database, ref.tournament_id, ref.round_number, name)
    if view is not None:
        view.carried = await carried_lines(database, peers, view)
    if view is None:
        raise NotFound(
            f"round {ref.round_number} of {ref.tournament_id} has no {name} allocation yet",
            metadata={"round": f"{ref.tournament_id}/{ref.round_number}", "policy": name},
        )
    return view


async def carried_lines(database: Database, peers: Peers, view: AllocationView) -> dict[str, ReasonDetail]:
    """Positive lines no batch covers whose model's payable balance is under its address's dust limit."""
    if not any(line.amount > 0 for line in view.lines):
        return {}
    async with database.connect() as conn:
        waiting = [s for s in await repo.line_states(conn, view.row.allocation_id) if s.state == "waiting"]
        codes = [chart.payable(s.participant_id, s.model_id) for s in waiting]
        balances = await ledger.balances_of(conn, codes)
    network = None
    carried: dict[str, ReasonDetail] = {}
    for state, code in zip(waiting, codes, strict=True):
        owed = -balances.get(code, 0)
        if not 0 < owed < max(DUST_LIMITS.values()):
            continue
        if network is None:
            network = (await peers.tournament(view.row.tournament_id)).network
        try:
            kind = decode_address((await peers.model(state.model_id)).payout_address, network).output_type
        except InvalidArgument:
            continue  # an address that cannot be paid is held for another reason, not dust
        if owed < DUST_LIMITS[kind]:
            carried[state.model_id] = carried_over(int(state.amount), owed, DUST_LIMITS[kind])
    return carried
