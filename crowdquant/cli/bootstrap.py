"""Bootstrap keys straight into the submissions schema (before any operator key exists)."""

from __future__ import annotations

from services.submissions.handlers.identity import create_key as create_key_row
from services.submissions.server import SPEC
from shared.auth import Role
from shared.config import CommonSettings
from shared.db import Database, ensure_database, migrate, resolve_database_url


async def create_key(settings: CommonSettings, role: Role, participant_id: str, description: str,
                     scopes: list[str], url: str | None = None) -> str:
    url = url or resolve_database_url(settings)
    await ensure_database(url)
    await migrate(url, SPEC.schema, SPEC.migrations)
    database = Database(url, schema=SPEC.schema, pool_size=1)
    try:
        async with database.transaction() as conn:
            _, full = await create_key_row(conn, None, participant_id, role, scopes, description)
    finally:
        await database.dispose()
    return full
