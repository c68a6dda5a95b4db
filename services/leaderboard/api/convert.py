"""Between the leaderboard's domain values and protobuf messages (its own and its peers')."""

from __future__ import annotations

import math
from collections.abc import Mapping

from crowdquant.common.v1 import common_pb2
from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as pb
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from services.leaderboard.domain.boards import ModelResult, RoundBoard, Source, Standing
from services.leaderboard.domain.metrics import METRIC_ORDER, Metric, Score
from services.leaderboard.domain.ranking import SortKey
from shared.errors import InvalidArgument
from shared.rpc.convert import timestamp

METRIC_TO_PROTO = {
    Metric.LOGLOSS: common_pb2.METRIC_LOGLOSS,
    Metric.AUC: common_pb2.METRIC_AUC,
    Metric.CORR: common_pb2.METRIC_CORR,
    Metric.MMC: common_pb2.METRIC_MMC,
}
METRIC_FROM_PROTO = {v: k for k, v in METRIC_TO_PROTO.items()}
SOURCE_TO_PROTO = {Source.VALIDATION: pb.SCORE_SOURCE_VALIDATION, Source.LIVE: pb.SCORE_SOURCE_LIVE}


def metric_from_proto(value: int, field: str = "metric") -> Metric | None:
    """None for METRIC_UNSPECIFIED (the board's main metric)."""
    if value == common_pb2.METRIC_UNSPECIFIED:
        return None
    try:
        return METRIC_FROM_PROTO[value]
    except KeyError:
        raise InvalidArgument(
            f"{field}: unknown metric {value}; choose METRIC_CORR, METRIC_MMC, METRIC_LOGLOSS or METRIC_AUC",
            metadata={"field": field},
        ) from None


def score_from_proto(score: sc_pb.MetricScore) -> Score:
    return Score(score.mean, score.ci_low, score.ci_high)


def scores_from_proto(message: sc_pb.ModelScores | sc_pb.MetaModel) -> dict[Metric, Score]:
    """The metrics set on a scoring message (a metric that does not apply is unset there)."""
    out = {}
    for metric in METRIC_ORDER:
        if metric.value in message.DESCRIPTOR.fields_by_name and message.HasField(metric.value):
            out[metric] = score_from_proto(getattr(message, metric.value))
    return out


def metric_value(metric: Metric, score: Score) -> pb.MetricValue:
    return pb.MetricValue(metric=METRIC_TO_PROTO[metric], value=score.value, ci_low=score.ci_low, ci_high=score.ci_high)


def metric_values(scores: Mapping[Metric, Score]) -> list[pb.MetricValue]:
    return [metric_value(m, scores[m]) for m in METRIC_ORDER if m in scores]


def round_ref(tournament_id: str, number: int) -> common_pb2.RoundRef:
    return common_pb2.RoundRef(tournament_id=tournament_id, round_number=number)


def round_pb(board: RoundBoard) -> pb.LeaderboardRound:
    return pb.LeaderboardRound(
        round=round_ref(board.tournament_id, board.round_number),
        source=SOURCE_TO_PROTO[board.source],
        publish_time=timestamp(board.published_at),
        model_count=board.model_count,
        total_payout_satoshis=board.total_payout_satoshis,
        main_metric=METRIC_TO_PROTO[board.main_metric],
        metrics=[METRIC_TO_PROTO[m] for m in board.metrics],
        meta_model_metrics=metric_values(board.meta_model),
        payouts_known=board.payouts_known,
    )


def zero_payout_pb(r: ModelResult) -> common_pb2.PayoutReason | None:
    """Why a result's payout is 0, as the boards and model profiles show it (None: paid or not known)."""
    if not r.payout_reason:
        return None
    return common_pb2.PayoutReason(
        code=common_pb2.ZeroPayoutReason.Value(f"ZERO_PAYOUT_REASON_{r.payout_reason}"), detail=r.payout_detail
    )


def entry_pb(standing: Standing) -> pb.LeaderboardEntry:
    r = standing.result
    return pb.LeaderboardEntry(
        rank=standing.rank,
        model_id=r.model_id,
        model_display_name=r.model_display_name,
        participant_display_name=r.participant_display_name,
        value=standing.score.value,
        ci_low=standing.score.ci_low,
        ci_high=standing.score.ci_high,
        tied_with_previous=standing.tied_with_previous,
        tied_with_next=standing.tied_with_next,
        stake_satoshis=r.stake_satoshis,
        payout_satoshis=r.payout_satoshis,
        metrics=metric_values(r.scores),
        zero_payout=zero_payout_pb(r),
    )


def key_to_position(key: SortKey) -> list[object]:
    return [key[0], key[1], key[2]]


def position_to_key(position: object) -> SortKey:
    """A page token's position back into a sort key; anything else is a forged token."""
    if (
        isinstance(position, list)
        and len(position) == 3
        and position[0] in (0, 1)
        and isinstance(position[1], int | float)
        and isinstance(position[2], str)
        and not math.isnan(float(position[1]))
    ):
        return (int(position[0]), float(position[1]), position[2])
    raise InvalidArgument("page_token is not a token this service issued", metadata={"field": "page_token"})
