"""ScoringService: parse, call one use case, answer in protobuf. Thin adapter."""

from __future__ import annotations

from typing import Any

from crowdquant.common.v1 import common_pb2
from crowdquant.scoring.v1 import scoring_service_pb2 as pb
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as pb_grpc
from services.scoring.domain.privacy import Reader
from services.scoring.usecases.ladder import PublicBoard
from services.scoring.usecases.reads import Results
from services.scoring.usecases.runs import Runner, check_stakes
from shared.auth import Role
from shared.db import Database
from shared.errors import InvalidArgument
from shared.idempotency import once
from shared.pagination import decode_token, encode_token, page_size
from shared.rounds import RoundKey
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


def round_key(ref: common_pb2.RoundRef) -> RoundKey:
    if not ref.tournament_id or ref.round_number < 1:
        raise InvalidArgument("round: tournament_id and round_number >= 1 are required", metadata={"field": "round"})
    return RoundKey(ref.tournament_id, ref.round_number)


def reader() -> Reader:
    who = principal()
    return Reader(who.participant_id if who.role is Role.PARTICIPANT else None)


def without_eras(scores: pb.ModelScores) -> pb.ModelScores:
    for name in ("logloss", "auc", "corr", "mmc"):
        if scores.HasField(name):
            getattr(scores, name).ClearField("eras")
    return scores


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


class ScoringServicer(pb_grpc.ScoringServiceServicer):
    def __init__(self, database: Database, runner: Runner, board: PublicBoard, results: Results) -> None:
        self.db = database
        self.runner = runner
        self.board = board
        self.results = results

    async def ScoreRound(self, request: pb.ScoreRoundRequest, context: Any):
        key = round_key(request.round)
        stakes = check_stakes({s.model_id: s.stake_satoshis for s in request.stakes})
        if len(stakes) != len(request.stakes):
            raise InvalidArgument("stakes: each model appears once", metadata={"field": "stakes"})

        async def action() -> pb.ScoreRoundResponse:
            return pb.ScoreRoundResponse(run=pb.ScoringRun(run_id=await self.runner.start(key, stakes)))

        started = await once(
            self.db,
            schema=SCHEMA,
            subject=principal().subject,
            rpc="ScoreRound",
            request=request,
            response_type=pb.ScoreRoundResponse,
            action=action,
        )
        await self.runner.wait(started.run.run_id, WAIT_SECONDS)
        return pb.ScoreRoundResponse(run=run_pb(await self.runner.get(started.run.run_id)))

    async def GetScoringRun(self, request: pb.GetScoringRunRequest, context: Any):
        return pb.GetScoringRunResponse(run=run_pb(await self.runner.get(request.run_id)))

    async def CancelScoringRun(self, request: pb.CancelScoringRunRequest, context: Any):
        if not request.run_id:
            raise InvalidArgument("run_id is required", metadata={"field": "run_id"})
        await self.runner.cancel(request.run_id)
        return pb.CancelScoringRunResponse(run=run_pb(await self.runner.get(request.run_id)))

    async def GetScores(self, request: pb.GetScoresRequest, context: Any):
        record = await self.results.model_scores(round_key(request.round), request.model_id, reader())
        return pb.GetScoresResponse(scores=pb.ModelScores.FromString(record))

    async def ListRoundScores(self, request: pb.ListRoundScoresRequest, context: Any):
        key = round_key(request.round)
        size = page_size(request.page_size)
        metric = METRIC_NAMES.get(request.order_by) or await self.results.default_order(key, reader())
        filters = ["scores", key.tournament_id, key.number, metric]
        after = decode_token(request.page_token, filters)
        page = await self.results.round_scores(key, metric, after, size, reader())
        token = encode_token(page.last_key, filters) if page.last_key else ""
        scores = [pb.ModelScores.FromString(r) for r in page.records]
        if not request.include_eras:
            scores = [without_eras(s) for s in scores]
        return pb.ListRoundScoresResponse(scores=scores, next_page_token=token, total_size=page.total)

    async def GetMetaModel(self, request: pb.GetMetaModelRequest, context: Any):
        record = await self.results.meta_model(round_key(request.round), reader())
        return pb.GetMetaModelResponse(meta_model=pb.MetaModel.FromString(record))

    async def ScoreValidation(self, request: pb.ScoreValidationRequest, context: Any):
        key = round_key(request.round)
        row, changed = await self.board.judge(key, request.model_id, request.version, request.content_sha256)
        return pb.ScoreValidationResponse(public_score=public_pb(row), displayed_score_changed=changed)

    async def GetPublicScores(self, request: pb.GetPublicScoresRequest, context: Any):
        key = round_key(request.round)
        size = page_size(request.page_size)
        filters = ["public", key.tournament_id, key.number]
        after = decode_token(request.page_token, filters)
        rows = await self.board.public_scores(key, after, size + 1)
        token = encode_token([rows[size - 1].k, rows[size - 1].model_id], filters) if len(rows) > size else ""
        return pb.GetPublicScoresResponse(public_scores=[public_pb(r) for r in rows[:size]], next_page_token=token)

    async def MarkRoundPublished(self, request: pb.MarkRoundPublishedRequest, context: Any):
        key = round_key(request.round)

        async def action() -> pb.MarkRoundPublishedResponse:
            row = await self.results.mark_published(key)
            return pb.MarkRoundPublishedResponse(round=request.round, publish_time=timestamp(row.published_at))

        return await once(
            self.db,
            schema=SCHEMA,
            subject=principal().subject,
            rpc="MarkRoundPublished",
            request=request,
            response_type=pb.MarkRoundPublishedResponse,
            action=action,
        )
