"""PostgreSQL roles: each service logs in as its own non-superuser role; migrations run as another.

* ``cq_<service>`` (``cq_submissions``, ``cq_scoring``, ``cq_leaderboard``, ``cq_payouts``): LOGIN,
  NOSUPERUSER, NOCREATEDB, NOCREATEROLE, NOREPLICATION, NOBYPASSRLS. Its privileges are the grants
  its own schema's migrations give it (USAGE on the schema and the DML the service needs), and it
  belongs to no role but the ones its service declares (payouts: ``crowdquant_app``, which holds the
  ledger's append-only grants and nothing more). So ``RESET ROLE`` and ``SET ROLE`` gain nothing.
* ``cq_migrate``: LOGIN, not a superuser either; owns the schemas (CREATE on the database) and runs
  the migrations, which grant to the service roles.

Who creates the roles: an administrator (a superuser or a CREATEROLE role) once per cluster, with
:func:`provision` (``crowdquant db upgrade`` with an admin ``DATABASE_URL``, the embedded server,
the test harness) or with ``scripts/postgres-init-roles.sh`` (docker-compose, Kubernetes).

With an admin URL the service URLs are derived from it (:func:`derive_url`): the same server and
database, the role's name, and a password that is an HMAC of the admin URL (stable, so every process
derives the same one; unknown to anyone who does not already hold the admin URL).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import quote, urlsplit

import asyncpg

from shared.config import ConfigError
from shared.logging import get_logger

log = get_logger(__name__)

MIGRATION_ROLE = "cq_migrate"
_LOGIN_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


class RoleSetupError(ConfigError):
    """The roles cannot be set up with this URL (it may not create roles); the message names the variable."""


def login_role(service: str) -> str:
    """The login role of ``service``."""
    return f"cq_{service}"


def role_password(admin_url: str, role: str) -> str:
    return hmac.new(admin_url.encode(), f"crowdquant-role:{role}".encode(), hashlib.sha256).hexdigest()[:40]


def derive_url(admin_url: str, role: str) -> str:
    """``admin_url`` logging in as ``role`` with its derived password (same server, database, options)."""
    parts = urlsplit(admin_url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{quote(role)}:{role_password(admin_url, role)}@{host}").geturl()


def url_user(url: str) -> str | None:
    return urlsplit(url).username


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def provision(admin_url: str, services: Mapping[str, Iterable[str]], *, attempts: int = 5) -> None:
    """Create or align the migration role and each service's login role (idempotent).

    ``services`` maps a service name to the group roles its login role belongs to. Every other
    membership of a login role is revoked, so it can never ``SET ROLE`` to anything with more.
    Roles are cluster-wide and several processes may provision at once: a conflict is retried.
    """
    for attempt in range(attempts):
        try:
            await _provision_once(admin_url, {name: tuple(groups) for name, groups in services.items()})
            return
        except (
            asyncpg.exceptions.DuplicateObjectError,
            asyncpg.exceptions.UniqueViolationError,
            asyncpg.exceptions.InternalServerError,
            asyncpg.exceptions.SerializationError,
            asyncpg.exceptions.DeadlockDetectedError,
        ):
            # "tuple concurrently updated" or a role made meanwhile by another process: again.
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))


async def _provision_once(admin_url: str, services: dict[str, tuple[str, ...]]) -> None:
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        me = await conn.fetchrow("SELECT rolname, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        if not (me["rolsuper"] or me["rolcreaterole"]):
            raise RoleSetupError(
                f"DATABASE_URL logs in as {me['rolname']!r}, which may not create roles: set it to the "
                f"service's own role (e.g. {login_role('submissions')}) or to an administrator's URL"
            )
        database = await conn.fetchval("SELECT current_database()")
        groups = sorted({group for names in services.values() for group in names})
        for role in [MIGRATION_ROLE, *(login_role(name) for name in services)]:
            await _ensure_login(conn, role, role_password(admin_url, role))
        for group in groups:
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", group):
                await conn.execute(f"CREATE ROLE {_quote_ident(group)} NOLOGIN")
            # The migration role must already belong to a group a migration grants it to itself.
            await _grant_membership(conn, group, MIGRATION_ROLE)
        for name, wanted in services.items():
            role = login_role(name)
            for group in wanted:
                await _grant_membership(conn, group, role)
            others = await conn.fetch(
                "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = $1",
                role,
            )
            for row in others:
                if row["rolname"] not in wanted:
                    await conn.execute(f"REVOKE {_quote_ident(row['rolname'])} FROM {_quote_ident(role)}")
                    log.warning("membership revoked", role=role, group=row["rolname"])
        has_create = await conn.fetchval(
            "SELECT has_database_privilege($1, current_database(), 'CREATE')", MIGRATION_ROLE
        )
        if not has_create:
            await conn.execute(f"GRANT CREATE ON DATABASE {_quote_ident(database)} TO {MIGRATION_ROLE}")
    finally:
        await conn.close()


async def adopt(admin_url: str, schemas: Iterable[str]) -> None:
    """Hand schemas made before the roles existed (and everything in them) to the migration role.

    Old development databases were migrated by the administrator itself, who then owns the schemas;
    the migration role could not even read them. Schemas it owns already are left as they are.
    """
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        for schema in schemas:
            owner = await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", schema)
            if owner is None or owner == MIGRATION_ROLE:
                continue
            async with conn.transaction():
                await _adopt_schema(conn, schema)
            log.warning("schema handed to the migration role", schema=schema, previous_owner=owner)
    finally:
        await conn.close()


_RELATION_KINDS = {
    "r": "TABLE",
    "p": "TABLE",
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "f": "FOREIGN TABLE",
    "S": "SEQUENCE",
}


async def _adopt_schema(conn: asyncpg.Connection, schema: str) -> None:
    to = _quote_ident(MIGRATION_ROLE)
    await conn.execute(f"ALTER SCHEMA {_quote_ident(schema)} OWNER TO {to}")
    relations = await conn.fetch(
        "SELECT c.relname, c.relkind::text AS relkind FROM pg_class c WHERE c.relnamespace = $1::regnamespace "
        "AND c.relkind::text = ANY($2::text[]) AND NOT EXISTS ("  # a column's own sequence moves with its table
        "  SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
        "  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')) ORDER BY 2 DESC, 1",
        schema,
        list(_RELATION_KINDS),
    )
    for row in relations:
        name = f"{_quote_ident(schema)}.{_quote_ident(row['relname'])}"
        await conn.execute(f"ALTER {_RELATION_KINDS[row['relkind']]} {name} OWNER TO {to}")
    routines = await conn.fetch(
        "SELECT p.oid::regprocedure::text AS signature FROM pg_proc p WHERE p.pronamespace = $1::regnamespace", schema
    )
    for row in routines:
        await conn.execute(f"ALTER ROUTINE {row['signature']} OWNER TO {to}")


async def _ensure_login(conn: asyncpg.Connection, role: str, password: str) -> None:
    quoted_password = "'" + password.replace("'", "''") + "'"
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    verb = "ALTER" if exists else "CREATE"
    await conn.execute(f"{verb} ROLE {_quote_ident(role)} WITH {_LOGIN_ATTRIBUTES} PASSWORD {quoted_password}")


async def _grant_membership(conn: asyncpg.Connection, group: str, member: str) -> None:
    if not await conn.fetchval(
        "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
        "JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = $1 AND u.rolname = $2",
        group,
        member,
    ):
        await conn.execute(f"GRANT {_quote_ident(group)} TO {_quote_ident(member)}")
