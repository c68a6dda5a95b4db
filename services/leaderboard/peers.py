"""The leaderboard's clients of its peers: scoring (scores, meta model, Ladder board), submissions
(round state, tournaments, model and participant names) and payouts (stakes and allocations).

Every call carries the service key and a deadline and is retried on UNAVAILABLE (shared client);
peer failures arrive as domain errors. Payouts is optional: when it cannot answer (UNIMPLEMENTED,
NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION, UNAVAILABLE) stakes come from scoring's record
and payouts stay 0 until a later pass finds the allocation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from crowdquant.common.v1 import common_pb2
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.submissions.v1 import identity_service_pb2 as id_pb
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from services.leaderboard.domain.boards import Payout
from shared.config import CommonSettings
from shared.errors import DomainError, FailedPrecondition, NotFound, PermissionDenied, Unavailable
from shared.logging import get_logger
from shared.rpc.peers import PeerChannels

log = get_logger("crowdquant.leaderboard.peers")
PAGE = 1000
ROUND_STATES = {v: k.removeprefix("STATE_").lower() for k, v in sub_pb.Round.State.items()}


@dataclass(frozen=True)
class RoundStatus:
    tournament_id: str
    number: int
    state: str  # open | closed | resolved | scored | paid


@dataclass(frozen=True)
class ModelName:
    display_name: str
    participant_id: str


def peer_code(exc: BaseException) -> grpc.StatusCode | None:
    """The status code a peer answered with, behind the domain error the shared client raised."""
    cause = exc.__cause__
    return cause.code() if isinstance(cause, grpc.aio.AioRpcError) else None


def _optional(exc: DomainError) -> bool:
    """Whether a payouts failure may be passed over: "not there (yet)", or payouts down (stakes then
    come from scoring, and payouts are fetched again later)."""
    return (
        isinstance(exc, NotFound | PermissionDenied | FailedPrecondition | Unavailable)
        or peer_code(exc) == grpc.StatusCode.UNIMPLEMENTED
    )


class Peers(PeerChannels):
    """Stubs of the peers, one channel each, closed with :meth:`close`."""

    CALLS = ("submissions", "scoring", "payouts")

    def __init__(self, settings: CommonSettings, deadline: float) -> None:
        super().__init__(settings)
        self.deadline = deadline

    async def _call(self, fn: Callable[..., Awaitable[Any]], request: Any) -> Any:
        return await self.unary(fn, request, deadline=self.deadline, attempts=3)

    async def _pages(self, fn: Callable[..., Awaitable[Any]], request: Any, field: str) -> list[Any]:
        items: list[Any] = []
        while True:
            response = await self._call(fn, request)
            items.extend(getattr(response, field))
            if not response.next_page_token:
                return items
            request.page_token = response.next_page_token

    # --- submissions ---------------------------------------------------------------------------

    async def round_status(self, tournament_id: str, number: int = 0) -> RoundStatus:
        """A round's state (number 0 = the tournament's latest round)."""
        ref = common_pb2.RoundRef(tournament_id=tournament_id, round_number=number)
        response = await self._call(self.submissions.GetRound, sub_pb.GetRoundRequest(round=ref))
        r = response.round
        return RoundStatus(r.round.tournament_id, r.round.round_number, ROUND_STATES.get(r.state, "unknown"))

    async def is_graded(self, tournament_id: str) -> bool:
        response = await self._call(
            self.submissions.GetTournament, sub_pb.GetTournamentRequest(tournament_id=tournament_id)
        )
        return response.tournament.target_kind == common_pb2.TARGET_KIND_GRADED

    async def busiest_tournament(self) -> str | None:
        """The tournament with the most rounds (the natural default for a single-tournament site)."""
        tournaments = await self._pages(
            self.submissions.ListTournaments, sub_pb.ListTournamentsRequest(page_size=PAGE), "tournaments"
        )
        active = [t for t in tournaments if t.latest_round_number > 0]
        if not active:
            return None
        return max(active, key=lambda t: (t.latest_round_number, t.tournament_id)).tournament_id

    async def model_names(self, tournament_id: str) -> dict[str, ModelName]:
        models = await self._pages(
            self.submissions.ListModels, sub_pb.ListModelsRequest(tournament_id=tournament_id, page_size=PAGE), "models"
        )
        return {m.model_id: ModelName(m.display_name, m.participant_id) for m in models}

    async def participant_names(self) -> dict[str, str]:
        participants = await self._pages(
            self.identity.ListParticipants, id_pb.ListParticipantsRequest(page_size=PAGE), "participants"
        )
        return {p.participant_id: p.display_name for p in participants}

    # --- scoring -------------------------------------------------------------------------------

    async def round_scores(self, tournament_id: str, number: int) -> list[sc_pb.ModelScores]:
        ref = common_pb2.RoundRef(tournament_id=tournament_id, round_number=number)
        return await self._pages(
            self.scoring.ListRoundScores, sc_pb.ListRoundScoresRequest(round=ref, page_size=PAGE), "scores"
        )

    async def meta_model(self, tournament_id: str, number: int) -> sc_pb.MetaModel:
        ref = common_pb2.RoundRef(tournament_id=tournament_id, round_number=number)
        return (await self._call(self.scoring.GetMetaModel, sc_pb.GetMetaModelRequest(round=ref))).meta_model

    async def public_scores(self, tournament_id: str, number: int) -> list[sc_pb.PublicScore]:
        ref = common_pb2.RoundRef(tournament_id=tournament_id, round_number=number)
        return await self._pages(
            self.scoring.GetPublicScores, sc_pb.GetPublicScoresRequest(round=ref, page_size=PAGE), "public_scores"
        )

    # --- payouts (optional) --------------------------------------------------------------------

    async def _if_payouts_can_tell(self, fn: Any, request: Any, what: str, number: int) -> Any | None:
        """A payouts call whose answer may be missing: None when it is not there (yet) or payouts is down."""
        try:
            return await self._call(fn, request)
        except DomainError as exc:
            if _optional(exc):
                log.debug(f"{what} not available", round=number, reason=exc.reason)
                return None
            raise

    async def round_stakes(self, tournament_id: str, number: int) -> dict[str, int] | None:
        """Stakes at risk by model; None when payouts cannot tell (yet)."""
        ref = common_pb2.RoundRef(tournament_id=tournament_id, round_number=number)
        response = await self._if_payouts_can_tell(
            self.payouts.GetRoundStakes, po_pb.GetRoundStakesRequest(round=ref), "stakes", number
        )
        return None if response is None else {s.model_id: s.stake_satoshis for s in response.stakes}

    async def allocation(self, tournament_id: str, number: int) -> dict[str, Payout] | None:
        """Allocated amounts by model (signed: a burn is negative) with the reason of a zero payout;
        None when not allocated (yet)."""
        ref = common_pb2.RoundRef(tournament_id=tournament_id, round_number=number)
        response = await self._if_payouts_can_tell(
            self.payouts.GetAllocation, po_pb.GetAllocationRequest(round=ref), "allocation", number
        )
        if response is None:
            return None
        payouts: dict[str, Payout] = {}
        for line in response.allocation.lines:
            reason = line.zero_payout
            code = common_pb2.ZeroPayoutReason.Name(reason.code).removeprefix("ZERO_PAYOUT_REASON_")
            payouts[line.model.model_id] = Payout(
                line.amount_satoshis, "" if code == "UNSPECIFIED" else code, reason.detail
            )
        return payouts

    async def mark_published(self, tournament_id: str, number: int) -> None:
        """Tell scoring the round is published, so every participant may read its scores."""
        ref = common_pb2.RoundRef(tournament_id=tournament_id, round_number=number)
        request = sc_pb.MarkRoundPublishedRequest(request_id=f"published:{tournament_id}:{number}", round=ref)
        await self._call(self.scoring.MarkRoundPublished, request)
