"""Fixtures shared by every tier: one real PostgreSQL per session, fresh databases, real servers."""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the services set it (crowdquant.cli.main)

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from hypothesis import settings

from tests.support import PostgresForTests

# CI runs every generated case from a fixed seed, so a red build is reproducible and never a coin toss;
# locally each run explores new cases (HYPOTHESIS_PROFILE=ci to replay CI's).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresForTests]:
    pg = PostgresForTests()
    yield pg
    pg.close()


@pytest_asyncio.fixture(scope="module")
async def database_url(postgres: PostgresForTests) -> AsyncIterator[str]:
    """A fresh, empty database for one test module."""
    url = await postgres.create_database()
    yield url
    await asyncio.sleep(0)
    await postgres.drop_database(url)
