"""Leaderboard messages as plain JSON-ready dicts: the public API's shapes.

Scores are numbers, or null where undefined (JSON has no NaN); amounts are integer satoshis;
times are RFC 3339 strings; metrics and sources are lower-case names.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from crowdquant.common.v1 import common_pb2
from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as pb

METRICS = {
    common_pb2.METRIC_LOGLOSS: "logloss",
    common_pb2.METRIC_AUC: "auc",
    common_pb2.METRIC_CORR: "corr",
    common_pb2.METRIC_MMC: "mmc",
}
METRIC_BY_NAME = {v: k for k, v in METRICS.items()}
SOURCES = {pb.SCORE_SOURCE_VALIDATION: "validation", pb.SCORE_SOURCE_LIVE: "live"}


def number(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def time(ts: Timestamp, present: bool = True) -> str | None:
    if not present or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToJsonString()


def metric_values(values: Any) -> dict[str, dict[str, float | None]]:
    return {
        METRICS.get(m.metric, "unknown"): {
            "value": number(m.value),
            "ci_low": number(m.ci_low),
            "ci_high": number(m.ci_high),
        }
        for m in values
    }


def round_summary(r: pb.LeaderboardRound) -> dict[str, Any]:
    return {
        "tournament_id": r.round.tournament_id,
        "round_number": r.round.round_number,
        "source": SOURCES.get(r.source, "unknown"),
        "publish_time": time(r.publish_time, r.HasField("publish_time")),
        "model_count": r.model_count,
        "total_payout_satoshis": r.total_payout_satoshis,
        "payouts_known": r.payouts_known,
        "main_metric": METRICS.get(r.main_metric),
        "metrics": [METRICS[m] for m in r.metrics if m in METRICS],
        "meta_model": metric_values(r.meta_model_metrics),
    }


def zero_payout(reason: common_pb2.PayoutReason) -> dict[str, Any]:
    """Why a payout is 0: the code without its prefix (e.g. "NOT_ORIGINAL") and the sentence."""
    code = common_pb2.ZeroPayoutReason.Name(reason.code).removeprefix("ZERO_PAYOUT_REASON_")
    return {"code": code, "detail": reason.detail}


def board(resp: pb.GetRoundLeaderboardResponse) -> dict[str, Any]:
    return {
        "round": round_summary(resp.round_info),
        "metric": METRICS.get(resp.metric),
        "source": SOURCES.get(resp.source, "unknown"),
        "total_size": resp.total_size,
        "update_time": time(resp.update_time),
        "entries": [
            {
                "rank": e.rank,
                "model_id": e.model_id,
                "model_display_name": e.model_display_name,
                "participant_display_name": e.participant_display_name,
                "value": number(e.value),
                "ci_low": number(e.ci_low),
                "ci_high": number(e.ci_high),
                "tied_with_previous": e.tied_with_previous,
                "tied_with_next": e.tied_with_next,
                "stake_satoshis": e.stake_satoshis,
                "payout_satoshis": e.payout_satoshis,
                "metrics": metric_values(e.metrics),
                "zero_payout": zero_payout(e.zero_payout) if e.HasField("zero_payout") else None,
            }
            for e in resp.entries
        ],
        "next_page_token": resp.next_page_token,
    }


def reputation(resp: pb.GetReputationResponse) -> dict[str, Any]:
    return {
        "metric": METRICS.get(resp.metric),
        "window_rounds": resp.window_rounds,
        "weights": list(resp.weights),
        "last_round": {"tournament_id": resp.last_round.tournament_id, "round_number": resp.last_round.round_number},
        "total_size": resp.total_size,
        "entries": [
            {
                "rank": e.rank,
                "model_id": e.model_id,
                "model_display_name": e.model_display_name,
                "participant_display_name": e.participant_display_name,
                "reputation": number(e.reputation),
                "rounds_counted": e.rounds_counted,
                "stake_satoshis": e.stake_satoshis,
            }
            for e in resp.entries
        ],
        "next_page_token": resp.next_page_token,
    }


def profile(resp: pb.GetModelProfileResponse) -> dict[str, Any]:
    p = resp.profile
    return {
        "model_id": p.model_id,
        "model_display_name": p.model_display_name,
        "participant_display_name": p.participant_display_name,
        "tournament_id": p.tournament_id,
        "total_payout_satoshis": p.total_payout_satoshis,
        "rounds": [
            {
                "round_number": r.round.round_number,
                "source": SOURCES.get(r.source, "unknown"),
                "rank": r.rank,
                "stake_satoshis": r.stake_satoshis,
                "payout_satoshis": r.payout_satoshis,
                "metrics": metric_values(r.metrics),
                "zero_payout": zero_payout(r.zero_payout) if r.HasField("zero_payout") else None,
            }
            for r in p.rounds
        ],
    }


def rounds(resp: pb.ListRoundsResponse) -> dict[str, Any]:
    return {"rounds": [round_summary(r) for r in resp.rounds], "next_page_token": resp.next_page_token}
