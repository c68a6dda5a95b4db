"""Queries on models."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.errors import AlreadyExists


async def insert_model(conn: AsyncConnection, **values: Any) -> Any:
    """Insert; a name equal to or looking like one in the tournament (same skeleton) is ALREADY_EXISTS naming it."""
    try:
        async with conn.begin_nested():
            return (
                await conn.execute(
                    text(
                        "INSERT INTO submissions.models (model_id, tournament_id, participant_id, display_name, "
                        "payout_address, name_skeleton) VALUES (:model_id, :tournament_id, :participant_id, :display_name, "
                        ":payout_address, :name_skeleton) RETURNING *"
                    ),
                    values,
                )
            ).one()
    except IntegrityError as exc:
        taken = (
            await conn.execute(
                text(
                    "SELECT display_name FROM submissions.models WHERE tournament_id = :t "
                    "AND (name_skeleton = :s OR display_name = :n) LIMIT 1"
                ),
                {"t": values["tournament_id"], "s": values["name_skeleton"], "n": values["display_name"]},
            )
        ).scalar()
        if taken is not None and taken != values["display_name"]:
            raise AlreadyExists(
                f"display_name {values['display_name']!r} looks like the existing model {taken!r} "
                "in this tournament; choose another",
                reason="NAME_LOOKALIKE",
                metadata={"field": "display_name", "existing": taken},
            ) from exc
        raise AlreadyExists(
            f"a model named {values['display_name']!r} already exists in this tournament",
            metadata={"field": "display_name"},
        ) from exc


async def get_model(conn: AsyncConnection, model_id: str, *, for_update: bool = False) -> Any | None:
    lock = " FOR UPDATE" if for_update else ""
    return (
        await conn.execute(text(f"SELECT * FROM submissions.models WHERE model_id = :m{lock}"), {"m": model_id})
    ).first()


async def list_models(
    conn: AsyncConnection, tournament_id: str | None, participant_id: str | None, after: str | None, limit: int
) -> list[Any]:
    return list(
        (
            await conn.execute(
                text(
                    "SELECT * FROM submissions.models WHERE (CAST(:t AS text) IS NULL OR tournament_id = :t) "
                    "AND (CAST(:p AS text) IS NULL OR participant_id = :p) AND (CAST(:after AS text) IS NULL OR model_id > :after) "
                    "ORDER BY model_id LIMIT :n"
                ),
                {"t": tournament_id, "p": participant_id, "after": after, "n": limit},
            )
        ).all()
    )


async def set_payout_address(conn: AsyncConnection, model_id: str, address: str) -> Any:
    return (
        await conn.execute(
            text(
                "UPDATE submissions.models SET payout_address = :a, updated_at = now() WHERE model_id = :m RETURNING *"
            ),
            {"a": address, "m": model_id},
        )
    ).one()


async def count_models(conn: AsyncConnection, participant_id: str) -> int:
    return (
        await conn.execute(
            text("SELECT count(*) FROM submissions.models WHERE participant_id = :p"), {"p": participant_id}
        )
    ).scalar_one()
