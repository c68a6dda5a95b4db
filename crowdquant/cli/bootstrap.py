"""Bootstrap keys straight into the submissions schema (before any operator key exists).

Written as the migration role, the owner of the schema: with ``CROWDQUANT_MIGRATION_DATABASE_URL``
(the migration job's container) directly; with an administrator's URL (``url``, ``DATABASE_URL`` or
the embedded server) the roles are made and the schema migrated first, then the derived migration
role writes. A URL of the submissions service's own role writes as that role.
"""

from __future__ import annotations

from services.submissions.server import SPEC
from services.submissions.usecases.identity import create_key as create_key_row
from shared import db_roles
from shared.auth import Role, ServiceName
from shared.config import CommonSettings
from shared.db import Database, migrate, prepare, resolve_database_url


async def _writer_url(settings: CommonSettings, url: str | None) -> str:
    """A URL that may write keys, with the submissions schema current."""
    if url is None and settings.migration_database_url is not None:
        owner_url = settings.migration_database_url.get_secret_value()
        await migrate(owner_url, SPEC.schema, SPEC.migrations)
        return owner_url
    url = url or resolve_database_url(settings)
    if db_roles.url_user(url) == db_roles.login_role(SPEC.name):
        return url  # the submissions service's own role: its schema is migrated already
    await prepare(url, [SPEC])
    return db_roles.derive_url(url, db_roles.MIGRATION_ROLE)


async def _create_keys(
    settings: CommonSettings, url: str | None, keys: list[tuple[Role, str, str, list[str], str]]
) -> list[str]:
    """Create keys (role, participant id, description, scopes, service name) in one transaction."""
    database = Database(await _writer_url(settings, url), schema=SPEC.schema, pool_size=1)
    try:
        async with database.transaction() as conn:
            return [
                (await create_key_row(conn, None, participant_id, role, scopes, description, service_name=service))[1]
                for role, participant_id, description, scopes, service in keys
            ]
    finally:
        await database.dispose()


async def create_key(
    settings: CommonSettings,
    role: Role,
    participant_id: str,
    description: str,
    scopes: list[str],
    url: str | None = None,
    service_name: str = "",
) -> str:
    return (await _create_keys(settings, url, [(role, participant_id, description, scopes, service_name)]))[0]


async def create_service_keys(settings: CommonSettings, description: str, url: str | None = None) -> dict[str, str]:
    """One key per service, each naming its service: ``{"submissions": key, "scoring": key, ...}``."""
    names = [name.value for name in ServiceName]
    keys = await _create_keys(
        settings, url, [(Role.SERVICE, "", f"{description} ({name})", [], name) for name in names]
    )
    return dict(zip(names, keys, strict=True))
