"""Queries on participants and API keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.submissions.store.tables import api_keys, participants
from shared.errors import AlreadyExists


async def insert_participant(
    conn: AsyncConnection, participant_id: str, display_name: str, email: str, name_skeleton: str
) -> Any:
    """Insert; a name equal to or looking like a taken one (same skeleton) is ALREADY_EXISTS naming it."""
    try:
        async with conn.begin_nested():
            result = await conn.execute(
                insert(participants)
                .values(
                    participant_id=participant_id, display_name=display_name, email=email, name_skeleton=name_skeleton
                )
                .returning(*participants.c)
            )
            return result.one()
    except IntegrityError as exc:
        taken = (
            await conn.execute(
                select(participants.c.display_name)
                .where((participants.c.name_skeleton == name_skeleton) | (participants.c.display_name == display_name))
                .limit(1)
            )
        ).scalar()
        if taken is not None and taken != display_name:
            raise AlreadyExists(
                f"display_name {display_name!r} looks like the existing participant {taken!r}; choose another",
                reason="NAME_LOOKALIKE",
                metadata={"field": "display_name", "existing": taken},
            ) from exc
        raise AlreadyExists(
            f"display_name {display_name!r} is taken; choose another", metadata={"field": "display_name"}
        ) from exc


async def get_participant(conn: AsyncConnection, participant_id: str) -> Any | None:
    result = await conn.execute(select(participants).where(participants.c.participant_id == participant_id))
    return result.first()


async def list_participants(conn: AsyncConnection, after: str | None, limit: int) -> list[Any]:
    query = select(participants).order_by(participants.c.participant_id).limit(limit)
    if after:
        query = query.where(participants.c.participant_id > after)
    return list((await conn.execute(query)).all())


async def insert_key(conn: AsyncConnection, **values: Any) -> Any:
    result = await conn.execute(insert(api_keys).values(**values).returning(*api_keys.c))
    return result.one()


async def get_key(conn: AsyncConnection, key_id: str) -> Any | None:
    return (await conn.execute(select(api_keys).where(api_keys.c.key_id == key_id))).first()


async def list_keys(conn: AsyncConnection, participant_id: str | None, after: str | None, limit: int) -> list[Any]:
    query = select(api_keys).order_by(api_keys.c.key_id).limit(limit)
    if participant_id:
        query = query.where(api_keys.c.participant_id == participant_id)
    if after:
        query = query.where(api_keys.c.key_id > after)
    return list((await conn.execute(query)).all())


async def revoke_key(conn: AsyncConnection, key_id: str) -> Any:
    """Set the revocation time once; a second revocation keeps the first time."""
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.key_id == key_id)
        .values(revoked_at=func.coalesce(api_keys.c.revoked_at, func.now()))
        .returning(*api_keys.c)
    )
    return result.one()


async def lock_participant(conn: AsyncConnection, participant_id: str) -> None:
    """Hold the participant's row until commit, so counts checked against a limit stay true."""
    await conn.execute(
        select(participants.c.participant_id).where(participants.c.participant_id == participant_id).with_for_update()
    )


async def count_active_keys(conn: AsyncConnection, participant_id: str) -> int:
    return (
        await conn.execute(
            select(func.count())
            .select_from(api_keys)
            .where(api_keys.c.participant_id == participant_id, api_keys.c.revoked_at.is_(None))
        )
    ).scalar_one()
