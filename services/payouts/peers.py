"""The payouts service's peers: submissions (rounds, tournaments, models, checks) and scoring (contributions).

Calls go with this service's own key (role service), a deadline, and retries of transient failures
with the same request, so a retried MarkRoundPaid stays idempotent. Channels open lazily, so peer
addresses set after start-up (tests, the demo) are honoured. Answers come back as the plain values of
``domain.tournaments``; the messages stay here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from crowdquant.common.v1 import common_pb2
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from services.payouts.domain.tournaments import (
    CheckResult,
    ConsistencyRules,
    MetricScore,
    ModelInfo,
    ModelScore,
    PayoutRules,
    PoolRules,
    RoundInfo,
    RoundRef,
    StakeRules,
    SubmissionInfo,
    TournamentInfo,
)
from shared.errors import NotFound
from shared.rpc.peers import PeerChannels

PAGE = 1000
NETWORK_NAMES = {
    common_pb2.BITCOIN_NETWORK_BITCOINLIB_TEST: "bitcoinlib_test",
    common_pb2.BITCOIN_NETWORK_TESTNET: "testnet",
    common_pb2.BITCOIN_NETWORK_REGTEST: "regtest",
    common_pb2.BITCOIN_NETWORK_MAINNET: "mainnet",
}
NETWORK_ENUMS = {name: value for value, name in NETWORK_NAMES.items()}


def network_name(value: int) -> str:
    """Our network name for the proto enum; unset means the offline default."""
    return NETWORK_NAMES.get(value, "bitcoinlib_test")


POLICY_NAMES = {common_pb2.PAYOUT_POLICY_POOL: "pool", common_pb2.PAYOUT_POLICY_STAKE: "stake"}
POLICY_ENUMS = {name: value for value, name in POLICY_NAMES.items()}


def policy_choice(value: int) -> str:
    """A proto payout policy as ``domain.tournaments`` names it: "" unset, the name, or the unknown number."""
    return "" if not value else POLICY_NAMES.get(value, str(value))


def _enum_name(enum: object, value: int, prefix: str) -> str:
    try:
        return enum.Name(value).removeprefix(prefix)  # type: ignore[attr-defined]
    except ValueError:
        return ""


def round_ref_pb(ref: RoundRef) -> common_pb2.RoundRef:
    return common_pb2.RoundRef(tournament_id=ref.tournament_id, round_number=ref.round_number)


def round_ref(message: common_pb2.RoundRef) -> RoundRef:
    return RoundRef(message.tournament_id, message.round_number)


def round_info(message: sub_pb.Round) -> RoundInfo:
    return RoundInfo(round_ref(message.round), _enum_name(sub_pb.Round.State, message.state, "STATE_"))


def model_info(message: sub_pb.Model) -> ModelInfo:
    return ModelInfo(message.model_id, message.participant_id, message.tournament_id, message.payout_address)


def check_result(message: sub_pb.CheckResult) -> CheckResult:
    passed = {sub_pb.CheckResult.OUTCOME_PASSED: True, sub_pb.CheckResult.OUTCOME_FLAGGED: False}
    return CheckResult(passed.get(message.outcome), message.reason, message.value, message.threshold)


def submission_info(message: sub_pb.Submission) -> SubmissionInfo:
    return SubmissionInfo(
        message.model_id,
        message.participant_id,
        check_result(message.originality),
        check_result(message.concordance),
    )


def _metric(scores: sc_pb.ModelScores, name: str) -> MetricScore | None:
    if not scores.HasField(name):
        return None
    value = getattr(scores, name)
    return MetricScore(value.mean, value.ci_low, value.ci_high, value.consistency)


def model_score(message: sc_pb.ModelScores) -> ModelScore:
    return ModelScore(
        message.model.model_id,
        message.model.participant_id,
        message.model.display_name,
        corr=_metric(message, "corr"),
        mmc=_metric(message, "mmc"),
        logloss=_metric(message, "logloss"),
        leave_one_out_gain=message.leave_one_out_gain,
        stake_satoshis=message.stake_satoshis,
    )


def payout_rules(message: sub_pb.PayoutRules) -> PayoutRules:
    pool, stake = message.pool, message.stake
    return PayoutRules(
        policy=policy_choice(message.policy),
        require_consistency=message.require_consistency,
        require_concordance=message.require_concordance,
        require_originality=message.require_originality if message.HasField("require_originality") else True,
        significance_required=message.significance == sub_pb.PayoutRules.SIGNIFICANCE_REQUIRED,
        pool=PoolRules(
            pool.pool_satoshis,
            _enum_name(common_pb2.ContributionMetric, pool.contribution_metric, "CONTRIBUTION_METRIC_"),
            pool.mmc_weight,
            pool.corr_weight,
        ),
        stake=StakeRules(stake.payout_threshold_satoshis, stake.corr_weight, stake.mmc_weight, stake.clip),
    )


def consistency_rules(message: sub_pb.ConsistencyRules) -> ConsistencyRules:
    return ConsistencyRules(message.mode != sub_pb.CHECK_MODE_OFF, message.min_consistency, message.benchmark_logloss)


def payout_parameters(message: sub_pb.PayoutRules) -> dict[str, bytes]:
    """The rules as an allocation under each policy stores them: a copy with that policy set."""
    found = {}
    for name, value in POLICY_ENUMS.items():
        rules = sub_pb.PayoutRules()
        rules.CopyFrom(message)
        rules.policy = value
        found[name] = rules.SerializeToString()
    return found


def tournament_info(message: sub_pb.Tournament) -> TournamentInfo:
    return TournamentInfo(
        message.tournament_id,
        network_name(message.network),
        payout_rules(message.rules.payout),
        consistency_rules(message.rules.consistency),
        payout_parameters(message.rules.payout),
    )


class Peers(PeerChannels):
    """Payouts' peers: rounds, rules, models and check results from submissions; scores from scoring."""

    CALLS = ("submissions", "scoring")

    # --- submissions -------------------------------------------------------------------------------

    async def round(self, ref: RoundRef) -> RoundInfo:
        request = sub_pb.GetRoundRequest(round=round_ref_pb(ref))
        return round_info((await self.unary(self.submissions.GetRound, request)).round)

    async def tournament(self, tournament_id: str) -> TournamentInfo:
        request = sub_pb.GetTournamentRequest(tournament_id=tournament_id)
        return tournament_info((await self.unary(self.submissions.GetTournament, request)).tournament)

    async def rounds(self, tournament_id: str, state: str) -> list[RoundInfo]:
        """The tournament's rounds in one state (by name: "OPEN", "SCORED", ...)."""
        value = sub_pb.Round.State.Value(f"STATE_{state}")
        found: list[RoundInfo] = []
        token = ""
        while True:
            resp = await self.unary(
                self.submissions.ListRounds,
                sub_pb.ListRoundsRequest(tournament_id=tournament_id, state=value, page_size=PAGE, page_token=token),
            )
            found += [round_info(r) for r in resp.rounds]
            token = resp.next_page_token
            if not token:
                return found

    async def latest_submissions(self, ref: RoundRef) -> dict[str, SubmissionInfo]:
        """Each model's latest submission in the round, by model id."""
        found: dict[str, SubmissionInfo] = {}
        token = ""
        while True:
            resp = await self.unary(
                self.submissions.ListSubmissions,
                sub_pb.ListSubmissionsRequest(
                    round=round_ref_pb(ref), latest_only=True, page_size=PAGE, page_token=token
                ),
            )
            found.update({s.model_id: submission_info(s) for s in resp.submissions})
            token = resp.next_page_token
            if not token:
                return found

    async def has_submission(self, ref: RoundRef, model_id: str) -> bool:
        try:
            await self.unary(
                self.submissions.GetSubmission,
                sub_pb.GetSubmissionRequest(round=round_ref_pb(ref), model_id=model_id),
            )
        except NotFound:
            return False
        return True

    async def model(self, model_id: str) -> ModelInfo:
        request = sub_pb.GetModelRequest(model_id=model_id)
        return model_info((await self.unary(self.submissions.GetModel, request)).model)

    async def models(self, tournament_id: str) -> dict[str, ModelInfo]:
        found: dict[str, ModelInfo] = {}
        token = ""
        while True:
            resp = await self.unary(
                self.submissions.ListModels,
                sub_pb.ListModelsRequest(tournament_id=tournament_id, page_size=PAGE, page_token=token),
            )
            found.update({m.model_id: model_info(m) for m in resp.models})
            token = resp.next_page_token
            if not token:
                return found

    async def mark_paid(self, ref: RoundRef, batch_ids: list[str], *, request_id: str) -> None:
        request = sub_pb.MarkRoundPaidRequest(request_id=request_id, round=round_ref_pb(ref), batch_ids=batch_ids)
        await self.unary(self.submissions.MarkRoundPaid, request)

    async def participant_exists(self, participant_id: str) -> bool:
        try:
            await self.unary(self.identity.GetParticipant, id_pb.GetParticipantRequest(participant_id=participant_id))
        except NotFound:
            return False
        return True

    # --- scoring -----------------------------------------------------------------------------------

    async def round_scores(self, ref: RoundRef) -> AsyncIterator[ModelScore]:
        token = ""
        while True:
            resp = await self.unary(
                self.scoring.ListRoundScores,
                sc_pb.ListRoundScoresRequest(round=round_ref_pb(ref), page_size=PAGE, page_token=token),
            )
            for scores in resp.scores:
                yield model_score(scores)
            token = resp.next_page_token
            if not token:
                return
