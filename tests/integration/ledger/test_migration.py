"""The DDL lists, run as the payouts migration will: downgrade removes the ledger, upgrade rebuilds it."""

from __future__ import annotations

import asyncpg
import pytest

from services.payouts.ledger.ddl import APP_ROLE, LEDGER_DOWNGRADE, LEDGER_UPGRADE

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _ledger_objects(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'payouts' ORDER BY 1")
    functions = await conn.fetch(
        "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'payouts' ORDER BY 1"
    )
    return [r["tablename"] for r in tables], [r["proname"] for r in functions]


async def test_downgrade_then_upgrade(ledger_db):
    conn = await asyncpg.connect(ledger_db.url)
    try:
        tables, functions = await _ledger_objects(conn)
        assert "ledger_postings" in tables and "ledger_append" in functions
        async with conn.transaction():
            for statement in LEDGER_DOWNGRADE:
                await conn.execute(statement)
        assert await _ledger_objects(conn) == ([], [])
        assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", APP_ROLE) == 1
        async with conn.transaction():
            for statement in LEDGER_UPGRADE:  # the role already exists: the DO block leaves it be
                await conn.execute(statement)
        assert await _ledger_objects(conn) == (tables, functions)
    finally:
        await conn.close()
