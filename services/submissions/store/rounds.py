"""Queries on tournaments, datasets, rounds and their packed data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.errors import AlreadyExists

ROUND_COLUMNS = """
    r.*, (SELECT count(DISTINCT s.model_id) FROM submissions.submissions s
          WHERE s.tournament_id = r.tournament_id AND s.round_number = r.round_number) AS model_count,
         (SELECT count(*) FROM submissions.submissions s
          WHERE s.tournament_id = r.tournament_id AND s.round_number = r.round_number) AS submission_count
"""


async def insert_tournament(conn: AsyncConnection, **values: Any) -> Any:
    try:
        async with conn.begin_nested():
            return (
                await conn.execute(
                    text(
                        "INSERT INTO submissions.tournaments (tournament_id, display_name, target_kind, network, rules) "
                        "VALUES (:tournament_id, :display_name, :target_kind, :network, :rules) RETURNING *"
                    ),
                    values,
                )
            ).one()
    except IntegrityError as exc:
        raise AlreadyExists(
            f"tournament {values['tournament_id']!r} already exists", metadata={"field": "tournament_id"}
        ) from exc


async def get_tournament(conn: AsyncConnection, tournament_id: str) -> Any | None:
    return (
        await conn.execute(
            text(
                "SELECT t.*, (SELECT max(round_number) FROM submissions.rounds r WHERE r.tournament_id = t.tournament_id) "
                "AS latest_round FROM submissions.tournaments t WHERE tournament_id = :t"
            ),
            {"t": tournament_id},
        )
    ).first()


async def list_tournaments(conn: AsyncConnection, after: str | None, limit: int) -> list[Any]:
    return list(
        (
            await conn.execute(
                text(
                    "SELECT t.*, (SELECT max(round_number) FROM submissions.rounds r WHERE r.tournament_id = t.tournament_id) "
                    "AS latest_round FROM submissions.tournaments t WHERE (CAST(:after AS text) IS NULL OR tournament_id > :after) "
                    "ORDER BY tournament_id LIMIT :n"
                ),
                {"after": after, "n": limit},
            )
        ).all()
    )


async def insert_dataset(conn: AsyncConnection, **values: Any) -> Any:
    return (
        await conn.execute(
            text(
                "INSERT INTO submissions.datasets (dataset_id, tournament_id, description, feature_names, training_rows, "
                "validation_rows, live_rows, content_sha256, payload) VALUES (:dataset_id, :tournament_id, :description, "
                ":feature_names, :training_rows, :validation_rows, :live_rows, :content_sha256, :payload) "
                "RETURNING dataset_id, tournament_id, description, feature_names, training_rows, validation_rows, "
                "live_rows, content_sha256, created_at"
            ),
            values,
        )
    ).one()


async def get_dataset(conn: AsyncConnection, dataset_id: str) -> Any | None:
    return (
        await conn.execute(text("SELECT * FROM submissions.datasets WHERE dataset_id = :d"), {"d": dataset_id})
    ).first()


async def lock_tournament(conn: AsyncConnection, tournament_id: str) -> None:
    """Serialise round openings of one tournament (round numbers are dense)."""
    await conn.execute(
        text("SELECT 1 FROM submissions.tournaments WHERE tournament_id = :t FOR UPDATE"), {"t": tournament_id}
    )


async def next_round_number(conn: AsyncConnection, tournament_id: str) -> int:
    value = (
        await conn.execute(
            text("SELECT coalesce(max(round_number), 0) + 1 FROM submissions.rounds WHERE tournament_id = :t"),
            {"t": tournament_id},
        )
    ).scalar_one()
    return int(value)


async def insert_round(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(
        text(
            "INSERT INTO submissions.rounds (tournament_id, round_number, state, scheduled_close_at, training_rows, "
            "validation_rows, live_rows, feature_count, era_count, dataset_id, generated_spec, commitment_sha256, "
            "committed_splits, salt) VALUES (:tournament_id, :round_number, 'open', :scheduled_close_at, "
            ":training_rows, :validation_rows, :live_rows, :feature_count, :era_count, :dataset_id, :generated_spec, "
            ":commitment_sha256, :committed_splits, :salt)"
        ),
        values,
    )


async def insert_round_data(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(
        text(
            "INSERT INTO submissions.round_data (tournament_id, round_number, feature_names, ids, eras, splits, "
            "features, targets) VALUES (:tournament_id, :round_number, :feature_names, :ids, :eras, :splits, "
            ":features, :targets)"
        ),
        values,
    )


async def get_round(
    conn: AsyncConnection, tournament_id: str, round_number: int, *, for_update: bool = False, counts: bool = True
) -> Any | None:
    """A round (0 = the latest); ``counts`` adds model and upload counts (skip them on hot paths)."""
    if round_number == 0:
        round_number = (
            await conn.execute(
                text("SELECT coalesce(max(round_number), 0) FROM submissions.rounds WHERE tournament_id = :t"),
                {"t": tournament_id},
            )
        ).scalar_one()
    if for_update:
        await conn.execute(
            text("SELECT 1 FROM submissions.rounds WHERE tournament_id = :t AND round_number = :n FOR UPDATE"),
            {"t": tournament_id, "n": round_number},
        )
    columns = ROUND_COLUMNS if counts else "r.*"
    return (
        await conn.execute(
            text(f"SELECT {columns} FROM submissions.rounds r WHERE tournament_id = :t AND round_number = :n"),
            {"t": tournament_id, "n": round_number},
        )
    ).first()


async def list_rounds(
    conn: AsyncConnection, tournament_id: str, state: str | None, before: int | None, limit: int
) -> list[Any]:
    return list(
        (
            await conn.execute(
                text(
                    f"SELECT {ROUND_COLUMNS} FROM submissions.rounds r WHERE tournament_id = :t "
                    "AND (CAST(:state AS text) IS NULL OR state = :state) "
                    "AND (CAST(:before AS integer) IS NULL OR round_number < :before) "
                    "ORDER BY round_number DESC LIMIT :n"
                ),
                {"t": tournament_id, "state": state, "before": before, "n": limit},
            )
        ).all()
    )


async def set_round_state(
    conn: AsyncConnection, tournament_id: str, round_number: int, state: str, time_column: str, **extra: Any
) -> None:
    sets = ", ".join([f"state = :state, {time_column} = now()", *(f"{k} = :{k}" for k in extra)])
    await conn.execute(
        text(f"UPDATE submissions.rounds SET {sets} WHERE tournament_id = :t AND round_number = :n"),
        {"state": state, "t": tournament_id, "n": round_number, **extra},
    )


async def get_round_data(conn: AsyncConnection, tournament_id: str, round_number: int) -> Any | None:
    return (
        await conn.execute(
            text("SELECT * FROM submissions.round_data WHERE tournament_id = :t AND round_number = :n"),
            {"t": tournament_id, "n": round_number},
        )
    ).first()


async def set_round_targets(conn: AsyncConnection, tournament_id: str, round_number: int, targets: bytes) -> None:
    await conn.execute(
        text("UPDATE submissions.round_data SET targets = :targets WHERE tournament_id = :t AND round_number = :n"),
        {"targets": targets, "t": tournament_id, "n": round_number},
    )
