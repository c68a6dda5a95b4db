"""ScoringService: runs, stored scores, the meta model and Ladder public scores. Thin adapter."""

from __future__ import annotations

from typing import Any

from crowdquant.common.v1 import common_pb2
from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as lb_pb
from crowdquant.leaderboard.v1 import leaderboard_service_pb2_grpc as lb_grpc
from crowdquant.scoring.v1 import scoring_service_pb2 as pb
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as pb_grpc
from services.scoring.peers import Peers
from services.scoring.store import scores as repo
from services.scoring.usecases.ladder import ValidationTargets, check_upload, require_sha256, score_validation
from services.scoring.usecases.runs import Runner
from shared.auth import Role
from shared.db import Database
from shared.errors import DomainError, InvalidArgument, NotFound, PermissionDenied
from shared.idempotency import run_once
from shared.pagination import decode_token, encode_token, page_size
from shared.rpc.context import principal
from shared.rpc.convert import timestamp

SCHEMA = "scoring"
STATES = {
    "running": pb.ScoringRun.STATE_RUNNING,
    "succeeded": pb.ScoringRun.STATE_SUCCEEDED,
    "failed": pb.ScoringRun.STATE_FAILED,
    "cancelled": pb.ScoringRun.STATE_CANCELLED,
}
METRIC_NAMES = {
    common_pb2.METRIC_LOGLOSS: "logloss",
    common_pb2.METRIC_AUC: "auc",
    common_pb2.METRIC_CORR: "corr",
    common_pb2.METRIC_MMC: "mmc",
}
WAIT_SECONDS = 600.0


def run_pb(row: Any) -> pb.ScoringRun:
    return pb.ScoringRun(
        name=f"scoringRuns/{row.run_id}",
        run_id=row.run_id,
        round=common_pb2.RoundRef(tournament_id=row.tournament_id, round_number=row.round_number),
        state=STATES[row.state],
        progress=row.progress,
        phase=row.phase,
        models_total=row.models_total,
        models_scored=row.models_scored,
        meta_model_policy=row.policy,
        error_message=row.error_message,
        create_time=timestamp(row.created_at),
        end_time=timestamp(row.ended_at),
    )


def require_ref(ref: common_pb2.RoundRef) -> None:
    if not ref.tournament_id or ref.round_number < 1:
        raise InvalidArgument("round: tournament_id and round_number >= 1 are required", metadata={"field": "round"})


def without_eras(scores: pb.ModelScores) -> pb.ModelScores:
    for name in ("logloss", "auc", "corr", "mmc"):
        if scores.HasField(name):
            getattr(scores, name).ClearField("eras")
    return scores


class ScoringServicer(pb_grpc.ScoringServiceServicer):
    def __init__(self, database: Database, peers: Peers, runner: Runner) -> None:
        self.db = database
        self.peers = peers
        self.runner = runner
        self.validation = ValidationTargets(peers)
        self._published: set[tuple[str, int]] = set()

    async def _published_round(self, ref: common_pb2.RoundRef) -> bool:
        key = (ref.tournament_id, ref.round_number)
        if key in self._published:
            return True
        stub = lb_grpc.LeaderboardServiceStub(self.peers._channel("leaderboard"))
        try:
            resp = await self.peers.unary(
                stub.GetRoundLeaderboard, lb_pb.GetRoundLeaderboardRequest(round=ref, page_size=1), deadline=5
            )
        except DomainError:
            return False
        published = resp.source == lb_pb.SCORE_SOURCE_LIVE
        if published:
            self._published.add(key)
        return published

    async def _may_read(self, ref: common_pb2.RoundRef, participant_id: str | None) -> None:
        who = principal()
        if (
            who.role is Role.PARTICIPANT
            and participant_id != who.participant_id
            and not await self._published_round(ref)
        ):
            raise PermissionDenied("another participant's scores are private until the leaderboard publishes the round")

    async def ScoreRound(self, request: pb.ScoreRoundRequest, context: Any):
        require_ref(request.round)
        async with self.db.transaction() as conn:

            async def action() -> pb.ScoreRoundResponse:
                run_id = await self.runner.start(request.round)
                return pb.ScoreRoundResponse(run=pb.ScoringRun(run_id=run_id))

            started = await run_once(
                conn,
                schema=SCHEMA,
                subject=principal().subject,
                rpc="ScoreRound",
                request=request,
                response_type=pb.ScoreRoundResponse,
                action=action,
            )
        await self.runner.wait(started.run.run_id, WAIT_SECONDS)
        return pb.ScoreRoundResponse(run=await self._run(started.run.run_id))

    async def _run(self, run_id: str) -> pb.ScoringRun:
        if not run_id:
            raise InvalidArgument("run_id is required", metadata={"field": "run_id"})
        async with self.db.connect() as conn:
            row = await repo.get_run(conn, run_id)
        if row is None:
            raise NotFound(f"scoring run {run_id!r} not found", metadata={"run_id": run_id})
        return run_pb(row)

    async def GetScoringRun(self, request: pb.GetScoringRunRequest, context: Any):
        return pb.GetScoringRunResponse(run=await self._run(request.run_id))

    async def CancelScoringRun(self, request: pb.CancelScoringRunRequest, context: Any):
        if not request.run_id:
            raise InvalidArgument("run_id is required", metadata={"field": "run_id"})
        await self.runner.cancel(request.run_id)
        return pb.CancelScoringRunResponse(run=await self._run(request.run_id))

    async def GetScores(self, request: pb.GetScoresRequest, context: Any):
        require_ref(request.round)
        async with self.db.connect() as conn:
            row = await repo.get_scores(conn, request.round.tournament_id, request.round.round_number, request.model_id)
        if row is None:
            raise NotFound(
                f"no scores for model {request.model_id!r} in round {request.round.round_number}",
                metadata={"model_id": request.model_id},
            )
        await self._may_read(request.round, row.participant_id)
        return pb.GetScoresResponse(scores=pb.ModelScores.FromString(bytes(row.scores)))

    async def ListRoundScores(self, request: pb.ListRoundScoresRequest, context: Any):
        require_ref(request.round)
        await self._may_read(request.round, None)
        ref = request.round
        size = page_size(request.page_size)
        async with self.db.connect() as conn:
            meta = await repo.get_meta(conn, ref.tournament_id, ref.round_number)
            if meta is None:
                raise NotFound(f"round {ref.round_number} of {ref.tournament_id!r} has not been scored")
            first = await repo.list_scores(conn, ref.tournament_id, ref.round_number, "corr", None, 1)
            default = "logloss" if first and first[0].sort_logloss is not None else "corr"
            metric = METRIC_NAMES.get(request.order_by, default)
            filters = ["scores", ref.tournament_id, ref.round_number, metric]
            after = decode_token(request.page_token, filters)
            rows = await repo.list_scores(conn, ref.tournament_id, ref.round_number, metric, after, size + 1)
            total = await repo.count_scores(conn, ref.tournament_id, ref.round_number)
        token = ""
        if len(rows) > size:
            last = rows[size - 1]
            token = encode_token([last.k0, last.k1, last.model_id], filters)
        scores = [pb.ModelScores.FromString(bytes(r.scores)) for r in rows[:size]]
        if not request.include_eras:
            scores = [without_eras(s) for s in scores]
        return pb.ListRoundScoresResponse(scores=scores, next_page_token=token, total_size=total)

    async def GetMetaModel(self, request: pb.GetMetaModelRequest, context: Any):
        require_ref(request.round)
        await self._may_read(request.round, None)
        async with self.db.connect() as conn:
            row = await repo.get_meta(conn, request.round.tournament_id, request.round.round_number)
        if row is None:
            raise NotFound(f"round {request.round.round_number} has not been scored")
        return pb.GetMetaModelResponse(meta_model=pb.MetaModel.FromString(bytes(row.meta_model)))

    async def ScoreValidation(self, request: pb.ScoreValidationRequest, context: Any):
        require_ref(request.round)
        if not request.model_id or request.version < 1:
            raise InvalidArgument("model_id and version >= 1 are required")
        content_sha256 = require_sha256(request.content_sha256)
        rows = await self.validation.get(request.round)
        upload = await self.peers.upload(request.round, request.model_id, request.version)
        predictions = check_upload(upload, content_sha256, rows)
        tournament = await self.peers.tournament(request.round.tournament_id)
        eps = tournament.rules.scoring.logloss_epsilon or 1e-15
        async with self.db.transaction() as conn:
            row, changed = await score_validation(conn, rows, request.round, upload, predictions, eps)
        return pb.ScoreValidationResponse(public_score=public_pb(row), displayed_score_changed=changed)

    async def GetPublicScores(self, request: pb.GetPublicScoresRequest, context: Any):
        require_ref(request.round)
        size = page_size(request.page_size)
        ref = request.round
        filters = ["public", ref.tournament_id, ref.round_number]
        after = decode_token(request.page_token, filters)
        async with self.db.connect() as conn:
            rows = await repo.list_ladder(conn, ref.tournament_id, ref.round_number, True, after, size + 1)
        token = encode_token([rows[size - 1].k, rows[size - 1].model_id], filters) if len(rows) > size else ""
        return pb.GetPublicScoresResponse(public_scores=[public_pb(r) for r in rows[:size]], next_page_token=token)


def public_pb(row: Any) -> pb.PublicScore:
    """A model's public Ladder row: the displayed value only once one of its versions set it."""
    out = pb.PublicScore(
        round=common_pb2.RoundRef(tournament_id=row.tournament_id, round_number=row.round_number),
        model=common_pb2.ModelRef(model_id=row.model_id, participant_id=row.participant_id),
        metric=common_pb2.METRIC_LOGLOSS,
        versions_scored=row.versions_scored,
        update_time=timestamp(row.updated_at),
    )
    if row.displayed is not None:
        out.version = row.version
        out.displayed_value = row.displayed
    return out
