"""Queries on published rounds, their entries and the publish counter (schema ``leaderboard``).

Metrics live in fixed columns ``<metric>_mean/_ci_low/_ci_high``; NULL means the metric does not
apply to the round, NaN that it applies but is undefined for the model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.leaderboard.domain.boards import ModelResult, Payout, RoundBoard, Source
from services.leaderboard.domain.metrics import METRIC_ORDER, Metric, Score

ENTRY_COLUMNS = ", ".join(f"{m}_mean, {m}_ci_low, {m}_ci_high" for m in METRIC_ORDER)
ENTRY_PARAMS = ", ".join(f":{m}_mean, :{m}_ci_low, :{m}_ci_high" for m in METRIC_ORDER)


def _score_json(score: Score) -> list[float | None]:
    return [None if math.isnan(x) else x for x in (score.value, score.ci_low, score.ci_high)]


def _score_from_json(values: list[float | None]) -> Score:
    v, lo, hi = (math.nan if x is None else float(x) for x in values)
    return Score(v, lo, hi)


async def published_version(conn: AsyncConnection) -> int:
    return int((await conn.execute(text("SELECT published_version FROM leaderboard.state WHERE id = 1"))).scalar_one())


async def bump_version(conn: AsyncConnection) -> int:
    """Count a change of the public boards; replicas that see a new number rebuild their cache."""
    return int(
        (
            await conn.execute(
                text(
                    "UPDATE leaderboard.state SET published_version = published_version + 1, updated_at = now() "
                    "WHERE id = 1 RETURNING published_version"
                )
            )
        ).scalar_one()
    )


async def save_round(conn: AsyncConnection, board: RoundBoard, main_ranks: Mapping[str, int]) -> datetime:
    """Insert or replace a published round; a re-publish keeps the first publish time."""
    meta = {m.value: _score_json(s) for m, s in board.meta_model.items()}
    published_at = (
        await conn.execute(
            text(
                "INSERT INTO leaderboard.rounds (tournament_id, round_number, main_metric, metrics, meta_model, "
                "payouts_known) VALUES (:t, :r, :main, :metrics, CAST(:meta AS jsonb), :known) "
                "ON CONFLICT (tournament_id, round_number) DO UPDATE SET main_metric = EXCLUDED.main_metric, "
                "metrics = EXCLUDED.metrics, meta_model = EXCLUDED.meta_model, payouts_known = EXCLUDED.payouts_known, "
                "updated_at = now() RETURNING published_at"
            ),
            {
                "t": board.tournament_id,
                "r": board.round_number,
                "main": board.main_metric.value,
                "metrics": [m.value for m in board.metrics],
                "meta": json.dumps(meta),
                "known": board.payouts_known,
            },
        )
    ).scalar_one()
    await conn.execute(
        text("DELETE FROM leaderboard.entries WHERE tournament_id = :t AND round_number = :r"),
        {"t": board.tournament_id, "r": board.round_number},
    )
    rows = []
    for result in board.results:
        row: dict[str, Any] = {
            "t": board.tournament_id,
            "r": board.round_number,
            "model": result.model_id,
            "model_name": result.model_display_name,
            "participant_name": result.participant_display_name,
            "rank": main_ranks[result.model_id],
            "stake": result.stake_satoshis,
            "payout": result.payout_satoshis,
            "reason": result.payout_reason,
            "detail": result.payout_detail,
        }
        for metric in METRIC_ORDER:
            score = result.scores.get(metric) if metric in board.metrics else None
            row[f"{metric}_mean"] = None if score is None else score.value
            row[f"{metric}_ci_low"] = None if score is None else score.ci_low
            row[f"{metric}_ci_high"] = None if score is None else score.ci_high
        rows.append(row)
    if rows:
        await conn.execute(
            text(
                "INSERT INTO leaderboard.entries (tournament_id, round_number, model_id, model_display_name, "
                f"participant_display_name, main_rank, stake_satoshis, payout_satoshis, payout_reason, payout_detail, "
                f"{ENTRY_COLUMNS}) VALUES (:t, :r, :model, :model_name, :participant_name, :rank, :stake, :payout, "
                f":reason, :detail, {ENTRY_PARAMS})"
            ),
            rows,
        )
    return published_at


async def set_payouts(conn: AsyncConnection, tournament_id: str, number: int, payouts: Mapping[str, Payout]) -> bool:
    """Record a round's allocation; False when the round is not published or already up to date."""
    locked = (
        await conn.execute(
            text(
                "SELECT payouts_known FROM leaderboard.rounds WHERE tournament_id = :t AND round_number = :r FOR UPDATE"
            ),
            {"t": tournament_id, "r": number},
        )
    ).first()
    if locked is None:
        return False
    current = {
        row.model_id: Payout(row.payout_satoshis, row.payout_reason, row.payout_detail)
        for row in (
            await conn.execute(
                text(
                    "SELECT model_id, payout_satoshis, payout_reason, payout_detail FROM leaderboard.entries "
                    "WHERE tournament_id = :t AND round_number = :r"
                ),
                {"t": tournament_id, "r": number},
            )
        ).all()
    }
    wanted = {m: payouts.get(m, Payout(0)) for m in current}
    if locked.payouts_known and wanted == current:
        return False
    changed = [
        {"t": tournament_id, "r": number, "m": m, "p": p.amount, "reason": p.reason, "detail": p.detail}
        for m, p in wanted.items()
        if current[m] != p
    ]
    if changed:
        await conn.execute(
            text(
                "UPDATE leaderboard.entries SET payout_satoshis = :p, payout_reason = :reason, payout_detail = :detail "
                "WHERE tournament_id = :t AND round_number = :r AND model_id = :m"
            ),
            changed,
        )
    await conn.execute(
        text(
            "UPDATE leaderboard.rounds SET payouts_known = true, updated_at = now() "
            "WHERE tournament_id = :t AND round_number = :r"
        ),
        {"t": tournament_id, "r": number},
    )
    return True


async def rounds_awaiting_payouts(conn: AsyncConnection, limit: int) -> list[tuple[str, int]]:
    """Published rounds whose allocation is not known yet, newest first."""
    rows = (
        await conn.execute(
            text(
                "SELECT tournament_id, round_number FROM leaderboard.rounds WHERE NOT payouts_known "
                "ORDER BY published_at DESC LIMIT :n"
            ),
            {"n": limit},
        )
    ).all()
    return [(r.tournament_id, r.round_number) for r in rows]


def _result(row: Any, metrics: tuple[Metric, ...]) -> ModelResult:
    scores = {}
    for metric in metrics:
        mean = getattr(row, f"{metric}_mean")
        if mean is not None:
            scores[metric] = Score(mean, getattr(row, f"{metric}_ci_low"), getattr(row, f"{metric}_ci_high"))
    return ModelResult(
        row.model_id,
        row.model_display_name,
        row.participant_display_name,
        scores,
        row.stake_satoshis,
        row.payout_satoshis,
        row.payout_reason,
        row.payout_detail,
    )


async def load_rounds(conn: AsyncConnection) -> list[RoundBoard]:
    """Every published round with its entries (what the read cache is built from)."""
    heads = (await conn.execute(text("SELECT * FROM leaderboard.rounds ORDER BY tournament_id, round_number"))).all()
    entries: dict[tuple[str, int], list[Any]] = {}
    for row in (
        await conn.execute(text("SELECT * FROM leaderboard.entries ORDER BY tournament_id, round_number, model_id"))
    ).all():
        entries.setdefault((row.tournament_id, row.round_number), []).append(row)
    boards = []
    for head in heads:
        metrics = tuple(m for m in METRIC_ORDER if m.value in head.metrics)
        meta = head.meta_model if isinstance(head.meta_model, dict) else json.loads(head.meta_model)
        boards.append(
            RoundBoard(
                tournament_id=head.tournament_id,
                round_number=head.round_number,
                source=Source.LIVE,
                main_metric=Metric(head.main_metric),
                metrics=metrics,
                results=tuple(_result(r, metrics) for r in entries.get((head.tournament_id, head.round_number), [])),
                published_at=head.published_at,
                meta_model={Metric(k): _score_from_json(v) for k, v in meta.items()},
                payouts_known=head.payouts_known,
            )
        )
    return boards
