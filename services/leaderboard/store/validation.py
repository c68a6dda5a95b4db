"""Queries on the open rounds' validation snapshots: the last Ladder board fetched from scoring,
kept so that a restarted replica (or one that cannot reach scoring) still shows the open round."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.leaderboard.domain.boards import ModelResult, RoundBoard, Source
from services.leaderboard.domain.metrics import Metric, Score


async def save_snapshot(conn: AsyncConnection, board: RoundBoard, content_sha256: str, fetched_at: datetime) -> bool:
    """Replace the round's snapshot unless it holds the same content already (then only touch it)."""
    metric = board.main_metric
    current = (
        await conn.execute(
            text(
                "SELECT content_sha256 FROM leaderboard.validation_boards WHERE tournament_id = :t AND round_number = :r "
                "FOR UPDATE"
            ),
            {"t": board.tournament_id, "r": board.round_number},
        )
    ).first()
    if current is not None and current.content_sha256 == content_sha256:
        await conn.execute(
            text(
                "UPDATE leaderboard.validation_boards SET fetched_at = :f WHERE tournament_id = :t AND round_number = :r"
            ),
            {"f": fetched_at, "t": board.tournament_id, "r": board.round_number},
        )
        return False
    await conn.execute(
        text("DELETE FROM leaderboard.validation_boards WHERE tournament_id = :t AND round_number = :r"),
        {"t": board.tournament_id, "r": board.round_number},
    )
    await conn.execute(
        text(
            "INSERT INTO leaderboard.validation_boards (tournament_id, round_number, metric, content_sha256, fetched_at) "
            "VALUES (:t, :r, :m, :h, :f)"
        ),
        {"t": board.tournament_id, "r": board.round_number, "m": metric.value, "h": content_sha256, "f": fetched_at},
    )
    rows = [
        {
            "t": board.tournament_id,
            "r": board.round_number,
            "model": r.model_id,
            "mn": r.model_display_name,
            "pn": r.participant_display_name,
            "v": r.score(metric).value,
        }
        for r in board.results
    ]
    if rows:
        await conn.execute(
            text(
                "INSERT INTO leaderboard.validation_entries (tournament_id, round_number, model_id, model_display_name, "
                "participant_display_name, displayed_value) VALUES (:t, :r, :model, :mn, :pn, :v)"
            ),
            rows,
        )
    return True


async def load_snapshots(conn: AsyncConnection) -> list[tuple[RoundBoard, datetime]]:
    heads = (await conn.execute(text("SELECT * FROM leaderboard.validation_boards"))).all()
    out = []
    for head in heads:
        rows: list[Any] = (
            await conn.execute(
                text(
                    "SELECT * FROM leaderboard.validation_entries WHERE tournament_id = :t AND round_number = :r "
                    "ORDER BY model_id"
                ),
                {"t": head.tournament_id, "r": head.round_number},
            )
        ).all()
        metric = Metric(head.metric)
        results = tuple(
            ModelResult(
                r.model_id, r.model_display_name, r.participant_display_name, {metric: Score(r.displayed_value)}
            )
            for r in rows
        )
        out.append(
            (
                RoundBoard(head.tournament_id, head.round_number, Source.VALIDATION, metric, (metric,), results),
                head.fetched_at,
            )
        )
    return out
