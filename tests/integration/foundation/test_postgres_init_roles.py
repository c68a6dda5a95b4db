"""The compose/Kubernetes path on a real server: the administrator's role script, then the migration
job as ``cq_migrate`` only (``crowdquant db upgrade`` with ``CROWDQUANT_MIGRATION_DATABASE_URL``),
then each service's own URL reaches its current schema and nothing else."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
import pytest

from services.registry import SERVICES, load
from shared import db_roles

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "postgres-init-roles.sh"


def _psql_env(admin_url: str) -> dict[str, str]:
    """libpq variables for the script's psql, from the test server's administrator URL."""
    parts = urlsplit(admin_url)
    env = {
        "PGHOST": parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0],
        "PGPORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_DB": parts.path.lstrip("/"),
    }
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    return env


async def _run(command: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def _psql_dir() -> str | None:
    try:
        from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return str(POSTGRES_BIN_PATH)


@pytest.fixture
async def admin_url(postgres):
    url = await postgres.create_database("initroles")
    yield url
    await postgres.drop_database(url)


async def test_role_script_then_migration_role_then_service_roles(admin_url, tmp_path):
    # URL files as docker-compose.yml's secrets/ folder holds them (the derived passwords, so that
    # other tests sharing this server's cluster-wide roles keep theirs)
    urls = {"migration": db_roles.derive_url(admin_url, db_roles.MIGRATION_ROLE)}
    urls |= {name: db_roles.derive_url(admin_url, db_roles.login_role(name)) for name in SERVICES}
    for name, url in urls.items():
        (tmp_path / f"{name}_database_url").write_text(url + "\n")
    path = os.pathsep.join(filter(None, [_psql_dir(), os.environ.get("PATH", "")]))
    env = {**os.environ, "PATH": path, "CROWDQUANT_SECRETS_DIR": str(tmp_path), **_psql_env(admin_url)}
    for _ in range(2):  # a second run only aligns again
        done = await _run(["sh", str(SCRIPT)], env, 60)
        assert done.returncode == 0, done.stderr

    migrate_env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDQUANT_") and k != "DATABASE_URL"}
    migrate_env["CROWDQUANT_MIGRATION_DATABASE_URL_FILE"] = str(tmp_path / "migration_database_url")
    migrate_env["CROWDQUANT_DATA_DIR"] = str(tmp_path / "data")
    done = await _run([sys.executable, "-m", "crowdquant.cli.main", "db", "upgrade"], migrate_env, 300)
    assert done.returncode == 0, done.stdout + done.stderr

    for name in SERVICES:
        conn = await asyncpg.connect(urls[name])
        try:
            schema = load(name)[0].schema
            assert await conn.fetchval("SELECT current_user") == db_roles.login_role(name)
            assert await conn.fetchval(f"SELECT version_num FROM {schema}.alembic_version")
            owner = await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", schema)
            assert owner == db_roles.MIGRATION_ROLE
            for other in SERVICES:
                if other != name:
                    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                        await conn.fetch(f"SELECT * FROM {load(other)[0].schema}.alembic_version")
        finally:
            await conn.close()


async def test_role_script_refuses_a_url_of_another_role(admin_url, tmp_path):
    for name in ("migration", *SERVICES):
        role = db_roles.MIGRATION_ROLE if name == "migration" else db_roles.login_role(name)
        (tmp_path / f"{name}_database_url").write_text(f"postgresql://{role}:pw@db/crowdquant")
    (tmp_path / "scoring_database_url").write_text("postgresql://postgres:pw@db/crowdquant")
    path = os.pathsep.join(filter(None, [_psql_dir(), os.environ.get("PATH", "")]))
    env = {**os.environ, "PATH": path, "CROWDQUANT_SECRETS_DIR": str(tmp_path), **_psql_env(admin_url)}
    done = await _run(["sh", str(SCRIPT)], env, 60)
    assert done.returncode != 0
    assert "scoring_database_url: expected postgresql://cq_scoring:" in done.stderr
