"""Migrating a database made before scopes were enforced and names compared by skeleton.

Keys keep what they could do (the old default scopes become all of the role's; a key made
read-only stays read-only), and names that already look alike keep working: the oldest holds the
skeleton, while a new lookalike is refused from then on.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import services.submissions
from shared.db import migrate, to_async_url

MIGRATIONS = Path(services.submissions.__file__).parent / "store" / "migrations"


async def upgrade_to(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["schema"] = "submissions"

    def run(sync_conn) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    engine = create_async_engine(to_async_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE SCHEMA IF NOT EXISTS submissions"))
            await conn.run_sync(run)
    finally:
        await engine.dispose()


async def test_old_keys_and_lookalike_names_migrate(database_url: str) -> None:
    await upgrade_to(database_url, "0003_service_identities")
    engine = create_async_engine(to_async_url(database_url))
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO submissions.participants (participant_id, display_name, created_at) VALUES "
                    "('p_1', 'bo', now() - interval '2 days'), ('p_2', 'b\u043e', now() - interval '1 day')"
                )
            )
            keys = {
                "k_default": ("participant", "p_1", ["read", "upload", "stake"]),
                "k_reader": ("participant", "p_1", ["read"]),
                "k_greedy": ("participant", "p_2", ["read", "admin", "internal"]),
                "k_operator": ("operator", None, ["read", "admin"]),
                "k_auditor": ("auditor", None, ["audit", "read"]),
                "k_service": ("service", None, ["read", "internal"]),
            }
            for key_id, (role, pid, scopes) in keys.items():
                await conn.execute(
                    text(
                        "INSERT INTO submissions.api_keys (key_id, participant_id, role, scopes, salt, secret_hash) "
                        "VALUES (:k, :p, :r, :s, '\\x00', '\\x00')"
                    ),
                    {"k": key_id, "p": pid, "r": role, "s": scopes},
                )
        await migrate(database_url, "submissions", MIGRATIONS)
        async with engine.begin() as conn:
            scopes = dict((await conn.execute(text("SELECT key_id, scopes FROM submissions.api_keys"))).all())
            names = dict(
                (await conn.execute(text("SELECT display_name, name_skeleton FROM submissions.participants"))).all()
            )
            assert scopes == {
                "k_default": ["read", "submit", "stake", "keys"],
                "k_reader": ["read"],
                "k_greedy": ["read"],
                "k_operator": ["read", "submit", "stake", "keys", "operate"],
                "k_auditor": ["read"],
                "k_service": ["read", "operate"],
            }
            assert names == {"bo": "bo", "b\u043e": None}  # the older name holds the skeleton
            for bad in (["admin"], []):
                try:
                    async with conn.begin_nested():
                        await conn.execute(
                            text("UPDATE submissions.api_keys SET scopes = :s WHERE key_id = 'k_reader'"), {"s": bad}
                        )
                except Exception as exc:  # the CHECK constraint holds the fixed set
                    assert "api_keys_scopes_check" in str(exc)
                else:
                    raise AssertionError(f"scopes {bad} were stored")
    finally:
        await engine.dispose()
