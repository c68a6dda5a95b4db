"""Least privilege in PostgreSQL, tried as a compromised service would, on the real servers' logins.

Each service logs in as its own role (``cq_<service>``): no superuser, no membership that gives more,
so ``RESET ROLE`` / ``SET ROLE`` gain nothing; another service's schema is refused; the ledger stays
append-only against the payouts role itself (grants refuse UPDATE/DELETE/TRUNCATE of history, and
the triggers that refuse them even to the owner are still there, out of the service's reach).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import pytest
from sqlalchemy import text

from services.registry import SERVICES, load
from shared import db_roles
from shared.db import DatabaseAccess, migrate, prepare
from shared.rpc.server import RunningService, start_service

SCHEMAS = {name: load(name)[0].schema for name in SERVICES}
# history tables and a column of each
LEDGER_HISTORY = {"ledger_accounts": "code", "ledger_entries": "id", "ledger_postings": "idx", "ledger_chain": "seq"}


@pytest.fixture
async def login(services: dict[str, RunningService]) -> AsyncIterator:
    """Open a plain connection with a service's own credentials (the URL its engine uses)."""
    opened: list[asyncpg.Connection] = []

    async def connect(name: str) -> asyncpg.Connection:
        conn = await asyncpg.connect(services[name].ctx.database.url)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        await conn.close()


async def refused(conn: asyncpg.Connection, sql: str) -> None:
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        await conn.execute(sql)


@pytest.mark.parametrize("name", SERVICES)
async def test_each_service_logs_in_as_its_own_role_with_no_power(services, name):
    database = services[name].ctx.database
    async with database.connect() as conn:
        who = (await conn.execute(text("SELECT current_user, session_user"))).one()
        role = (
            await conn.execute(
                text(
                    "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
                    "FROM pg_roles WHERE rolname = current_user"
                )
            )
        ).one()
        # every role it is a member of, directly or not, and what those may do
        reachable = (
            await conn.execute(
                text(
                    "SELECT r.rolname, r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls AS powerful "
                    "FROM pg_roles r WHERE r.rolname <> current_user AND pg_has_role(current_user, r.oid, 'MEMBER')"
                )
            )
        ).all()
    assert tuple(who) == (db_roles.login_role(name), db_roles.login_role(name))
    assert not any(role), f"{name}'s role has attributes {role}"
    expected = {"crowdquant_app"} if name == "payouts" else set()
    assert {r.rolname for r in reachable} == expected
    assert not any(r.powerful for r in reachable)


@pytest.mark.parametrize("name", SERVICES)
async def test_reset_role_and_set_role_gain_nothing(services, login, database_url, name):
    conn = await login(name)
    me = db_roles.login_role(name)
    admin = urlsplit(database_url).username
    await conn.execute("RESET ROLE")
    assert await conn.fetchval("SELECT current_user") == me
    for target in {admin, db_roles.MIGRATION_ROLE, *(db_roles.login_role(o) for o in SERVICES if o != name)}:
        await refused(conn, f'SET ROLE "{target}"')
        await refused(conn, f'SET SESSION AUTHORIZATION "{target}"')
    assert await conn.fetchval("SELECT current_user") == me
    if name == "payouts":
        # its one group has less than the login itself: acting as it reaches nothing new
        await conn.execute("SET ROLE crowdquant_app")
        await refused(conn, "SELECT * FROM submissions.api_keys")
        await refused(conn, "UPDATE payouts.ledger_postings SET amount = 0")
        await conn.execute("RESET ROLE")
    for other, schema in SCHEMAS.items():
        if other != name:
            await refused(conn, f"SELECT * FROM {schema}.alembic_version")


@pytest.mark.parametrize("name", SERVICES)
async def test_another_services_schema_and_ddl_are_refused(services, login, name):
    conn = await login(name)
    own = SCHEMAS[name]
    for other, schema in SCHEMAS.items():
        if other == name:
            continue
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY 1", schema)
        assert tables, f"{schema} has tables to attack"
        for row in tables:
            await refused(conn, f'SELECT 1 FROM {schema}."{row["tablename"]}" LIMIT 1')
            await refused(conn, f'DELETE FROM {schema}."{row["tablename"]}"')
    # its own schema's structure, the version table, a new schema: all the migration role's
    await refused(conn, f"CREATE TABLE {own}.intruder (x int)")
    await refused(conn, f"UPDATE {own}.alembic_version SET version_num = version_num")
    await refused(conn, "CREATE SCHEMA intruder")
    await refused(conn, "CREATE TABLE public.intruder (x int)")
    await refused(conn, f"ALTER TABLE {own}.idempotency_keys ADD COLUMN intruder int")
    await refused(conn, f"DROP TABLE {own}.idempotency_keys")


async def test_ledger_is_append_only_against_the_payouts_role(services, login, database_url):
    conn = await login("payouts")
    for reset in ("RESET ROLE", "SET ROLE crowdquant_app"):
        await conn.execute(reset)
        for table, column in LEDGER_HISTORY.items():
            await refused(conn, f"UPDATE payouts.{table} SET {column} = {column}")
            await refused(conn, f"DELETE FROM payouts.{table}")
            await refused(conn, f"TRUNCATE payouts.{table}")
        await refused(conn, "UPDATE payouts.ledger_balances SET balance = balance + 1")
        await refused(conn, "INSERT INTO payouts.ledger_chain_head SELECT * FROM payouts.ledger_chain_head")
        await refused(conn, "ALTER TABLE payouts.ledger_postings DISABLE TRIGGER USER")
        await refused(conn, "SET session_replication_role = replica")  # would skip every trigger
        await conn.execute("RESET ROLE")
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
        # recorded_at is the database's to set: the column grants leave it out
        await conn.execute(
            "INSERT INTO payouts.ledger_entries (id, effective_at, kind, recorded_at) "
            "VALUES (gen_random_uuid(), now(), 'x', now() - interval '1 day')"
        )
    # The triggers that refuse changes even to the owner are there, and fire for the owner.
    triggers = await conn.fetch(
        "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'payouts' AND NOT t.tgisinternal AND t.tgenabled = 'O'"
    )
    guarded = {row["relname"] for row in triggers}
    assert set(LEDGER_HISTORY) <= guarded
    owner = await asyncpg.connect(db_roles.derive_url(database_url, db_roles.MIGRATION_ROLE))
    try:
        assert (
            await owner.fetchval(
                "SELECT tableowner FROM pg_tables WHERE schemaname = 'payouts' AND tablename = 'ledger_postings'"
            )
            == db_roles.MIGRATION_ROLE
        )
        for table, column in LEDGER_HISTORY.items():
            with pytest.raises(asyncpg.exceptions.PostgresError) as refusal:
                await owner.execute(f"UPDATE payouts.{table} SET {column} = {column}")
            assert refusal.value.sqlstate == "LDG03", table
    finally:
        await owner.close()


async def test_a_service_with_its_own_url_waits_for_the_migration_job(postgres):
    """Production: the service never migrates; NOT_SERVING until the migration role has run."""
    admin = await postgres.create_database("roles")
    spec, cls = load("scoring")
    await db_roles.provision(admin, {"scoring": ()})
    own = db_roles.derive_url(admin, db_roles.login_role("scoring"))
    settings = cls(port=0, grpc_host="127.0.0.1", health_interval_seconds=60, grace_seconds=0.1)
    running = await start_service(spec, settings, DatabaseAccess(own))
    try:
        assert not await running.check_once()
        conn = await asyncpg.connect(own)
        try:
            assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'scoring'") == 0
        finally:
            await conn.close()
        await migrate(db_roles.derive_url(admin, db_roles.MIGRATION_ROLE), spec.schema, spec.migrations)
        assert await running.check_once()
    finally:
        await running.stop(grace=0.1)
        await postgres.drop_database(admin)


async def test_a_login_role_loses_any_membership_it_was_given(postgres):
    """Provisioning aligns the roles: a membership slipped in (e.g. by hand) is taken away again."""
    admin = await postgres.create_database("roles")
    try:
        await prepare(admin, [load("leaderboard")[0]])
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f"GRANT {db_roles.MIGRATION_ROLE} TO {db_roles.login_role('leaderboard')}")
            await db_roles.provision(admin, {"leaderboard": ()})
            assert not await conn.fetchval(
                "SELECT pg_has_role($1, $2, 'MEMBER')", db_roles.login_role("leaderboard"), db_roles.MIGRATION_ROLE
            )
        finally:
            await conn.close()
    finally:
        await postgres.drop_database(admin)


async def test_a_schema_the_administrator_migrated_is_handed_to_the_migration_role(postgres):
    """A database from before the roles (migrated by the superuser itself) carries on after an upgrade."""
    admin = await postgres.create_database("roles")
    spec = load("payouts")[0]
    try:
        await db_roles.provision(admin, {"payouts": spec.login_groups})
        await migrate(admin, spec.schema, spec.migrations)  # the old way: everything the superuser's
        await prepare(admin, [spec])
        conn = await asyncpg.connect(admin)
        try:
            owners = await conn.fetch(
                "SELECT DISTINCT c.relowner::regrole::text AS owner FROM pg_class c "
                "WHERE c.relnamespace IN ('payouts'::regnamespace, 'payouts_wallet'::regnamespace) "
                "UNION SELECT DISTINCT p.proowner::regrole::text FROM pg_proc p "
                "WHERE p.pronamespace = 'payouts'::regnamespace "
                "UNION SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname LIKE 'payouts%'"
            )
        finally:
            await conn.close()
        assert {row["owner"] for row in owners} == {db_roles.MIGRATION_ROLE}
        service = await asyncpg.connect(db_roles.derive_url(admin, db_roles.login_role("payouts")))
        try:
            assert await service.fetchval("SELECT count(*) FROM payouts.ledger_accounts") == 0
            await refused(service, "DELETE FROM payouts.ledger_postings")
        finally:
            await service.close()
    finally:
        await postgres.drop_database(admin)


async def test_a_url_that_may_not_create_roles_is_refused_with_a_clear_message(services, database_url):
    """A service's own URL given to the wrong service is not an administrator's: refused, naming the variable."""
    scoring_url = db_roles.derive_url(database_url, db_roles.login_role("scoring"))
    with pytest.raises(db_roles.RoleSetupError, match="DATABASE_URL logs in as 'cq_scoring'"):
        await db_roles.provision(scoring_url, {"payouts": ("crowdquant_app",)})
