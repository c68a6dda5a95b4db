"""The payouts service's peers: submissions (rounds, tournaments, models, checks) and scoring (contributions).

Calls go with this service's own key (role service), a deadline, and retries of transient failures
with the same request, so a retried MarkRoundPaid stays idempotent. Channels open lazily, so peer
addresses set after start-up (tests, the demo) are honoured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from crowdquant.common.v1 import common_pb2
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
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


class Peers(PeerChannels):
    """Payouts' peers: rounds, rules, models and check results from submissions; scores from scoring."""

    CALLS = ("submissions", "scoring")

    # --- submissions -------------------------------------------------------------------------------

    async def round(self, ref: common_pb2.RoundRef) -> sub_pb.Round:
        return (await self.unary(self.submissions.GetRound, sub_pb.GetRoundRequest(round=ref))).round

    async def tournament(self, tournament_id: str) -> sub_pb.Tournament:
        return (
            await self.unary(self.submissions.GetTournament, sub_pb.GetTournamentRequest(tournament_id=tournament_id))
        ).tournament

    async def rounds(self, tournament_id: str, state: int) -> list[sub_pb.Round]:
        found: list[sub_pb.Round] = []
        token = ""
        while True:
            resp = await self.unary(
                self.submissions.ListRounds,
                sub_pb.ListRoundsRequest(tournament_id=tournament_id, state=state, page_size=PAGE, page_token=token),
            )
            found += list(resp.rounds)
            token = resp.next_page_token
            if not token:
                return found

    async def latest_submissions(self, ref: common_pb2.RoundRef) -> dict[str, sub_pb.Submission]:
        """Each model's latest submission in the round, by model id."""
        found: dict[str, sub_pb.Submission] = {}
        token = ""
        while True:
            resp = await self.unary(
                self.submissions.ListSubmissions,
                sub_pb.ListSubmissionsRequest(round=ref, latest_only=True, page_size=PAGE, page_token=token),
            )
            found.update({s.model_id: s for s in resp.submissions})
            token = resp.next_page_token
            if not token:
                return found

    async def has_submission(self, ref: common_pb2.RoundRef, model_id: str) -> bool:
        try:
            await self.unary(self.submissions.GetSubmission, sub_pb.GetSubmissionRequest(round=ref, model_id=model_id))
        except NotFound:
            return False
        return True

    async def model(self, model_id: str) -> sub_pb.Model:
        return (await self.unary(self.submissions.GetModel, sub_pb.GetModelRequest(model_id=model_id))).model

    async def models(self, tournament_id: str) -> dict[str, sub_pb.Model]:
        found: dict[str, sub_pb.Model] = {}
        token = ""
        while True:
            resp = await self.unary(
                self.submissions.ListModels,
                sub_pb.ListModelsRequest(tournament_id=tournament_id, page_size=PAGE, page_token=token),
            )
            found.update({m.model_id: m for m in resp.models})
            token = resp.next_page_token
            if not token:
                return found

    async def mark_paid(self, ref: common_pb2.RoundRef, batch_ids: list[str], *, request_id: str) -> sub_pb.Round:
        request = sub_pb.MarkRoundPaidRequest(request_id=request_id, round=ref, batch_ids=batch_ids)
        return (await self.unary(self.submissions.MarkRoundPaid, request)).round

    async def participant_exists(self, participant_id: str) -> bool:
        try:
            await self.unary(self.identity.GetParticipant, id_pb.GetParticipantRequest(participant_id=participant_id))
        except NotFound:
            return False
        return True

    # --- scoring -----------------------------------------------------------------------------------

    async def round_scores(self, ref: common_pb2.RoundRef) -> AsyncIterator[sc_pb.ModelScores]:
        token = ""
        while True:
            resp = await self.unary(
                self.scoring.ListRoundScores,
                sc_pb.ListRoundScoresRequest(round=ref, page_size=PAGE, page_token=token),
            )
            for scores in resp.scores:
                yield scores
            token = resp.next_page_token
            if not token:
                return
