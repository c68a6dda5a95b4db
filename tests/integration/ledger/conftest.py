"""A fresh database with the ledger's schema, and engines acting as the application role and as owner.

The server and the empty database come from the shared ``database_url`` fixture (pgserver in a temp
folder, or ``DATABASE_URL``); this file adds schema ``payouts`` with ``LEDGER_UPGRADE`` applied.
Writes in these tests go through ``app_engine`` (acting as ``crowdquant_app``, whose grants the
service's login ``cq_payouts`` inherits; ``tests/integration/security/test_database_roles.py`` tries
the real login);
``owner_engine`` is the superuser, used only to tamper and to inspect.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.payouts.ledger.ddl import APP_ROLE, LEDGER_UPGRADE


@dataclass
class LedgerDb:
    url: str
    app_engine: AsyncEngine
    owner_engine: AsyncEngine


def _async_url(url: str) -> str:
    return "postgresql+asyncpg://" + url.split("://", 1)[1]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ledger_db(database_url: str) -> AsyncIterator[LedgerDb]:
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute("CREATE SCHEMA payouts")
        for statement in LEDGER_UPGRADE:
            await admin.execute(statement)
    finally:
        await admin.close()
    app = create_async_engine(
        _async_url(database_url),
        pool_size=20,
        max_overflow=10,
        connect_args={"server_settings": {"role": APP_ROLE}},
    )
    owner = create_async_engine(_async_url(database_url), pool_size=5)
    yield LedgerDb(database_url, app, owner)
    await app.dispose()
    await owner.dispose()
