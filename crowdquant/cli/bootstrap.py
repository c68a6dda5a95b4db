"""Bootstrap keys straight into the submissions schema (before any operator key exists)."""

from __future__ import annotations

from services.submissions.handlers.identity import create_key as create_key_row
from services.submissions.server import SPEC
from shared.auth import Role, ServiceName
from shared.config import CommonSettings
from shared.db import Database, ensure_database, migrate, resolve_database_url


async def _create_keys(url: str, keys: list[tuple[Role, str, str, list[str], str]]) -> list[str]:
    """Create keys (role, participant id, description, scopes, service name) in one transaction."""
    await ensure_database(url)
    await migrate(url, SPEC.schema, SPEC.migrations)
    database = Database(url, schema=SPEC.schema, pool_size=1)
    try:
        async with database.transaction() as conn:
            return [(await create_key_row(conn, None, participant_id, role, scopes, description,
                                           service_name=service))[1]
                    for role, participant_id, description, scopes, service in keys]
    finally:
        await database.dispose()


async def create_key(settings: CommonSettings, role: Role, participant_id: str, description: str,
                     scopes: list[str], url: str | None = None, service_name: str = "") -> str:
    url = url or resolve_database_url(settings)
    return (await _create_keys(url, [(role, participant_id, description, scopes, service_name)]))[0]


async def create_service_keys(settings: CommonSettings, description: str, url: str | None = None) -> dict[str, str]:
    """One key per service, each naming its service: ``{"submissions": key, "scoring": key, ...}``."""
    url = url or resolve_database_url(settings)
    names = [name.value for name in ServiceName]
    keys = await _create_keys(url, [(Role.SERVICE, "", f"{description} ({name})", [], name) for name in names])
    return dict(zip(names, keys, strict=True))
