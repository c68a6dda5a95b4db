"""How a service finds its database login: its own role's URL, or one derived from an administrator's."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from shared import db_roles
from shared.config import CommonSettings
from shared.db import service_access

ADMIN = "postgresql://admin:s3cret@db.example:5433/crowdquant?sslmode=require"


def test_derived_url_keeps_the_server_and_changes_only_the_login() -> None:
    url = db_roles.derive_url(ADMIN, "cq_scoring")
    parts, admin = urlsplit(url), urlsplit(ADMIN)
    assert parts.username == "cq_scoring"
    assert (parts.hostname, parts.port, parts.path, parts.query) == (
        admin.hostname,
        admin.port,
        admin.path,
        admin.query,
    )
    assert parts.password and "s3cret" not in url


def test_derived_passwords_are_stable_per_role_and_secret_to_the_admin_url() -> None:
    one = db_roles.role_password(ADMIN, "cq_scoring")
    assert one == db_roles.role_password(ADMIN, "cq_scoring")
    assert one != db_roles.role_password(ADMIN, "cq_payouts")
    assert one != db_roles.role_password(ADMIN.replace("s3cret", "other"), "cq_scoring")
    assert len(one) >= 32


def test_embedded_socket_url_derives_too() -> None:
    url = db_roles.derive_url("postgresql://postgres:@/crowdquant?host=/tmp/pg", "cq_leaderboard")
    assert url.startswith("postgresql://cq_leaderboard:") and url.endswith("@/crowdquant?host=/tmp/pg")


def test_a_url_naming_the_services_own_role_is_used_as_is_and_never_migrates() -> None:
    own = "postgresql://cq_payouts:pw@db:5432/crowdquant"
    access = service_access(CommonSettings(database_url=own), "payouts")
    assert access.url == own and access.admin_url is None


@pytest.mark.parametrize("url", [ADMIN, "postgresql://cq_scoring:pw@db/crowdquant"])
def test_any_other_url_is_an_administrators_and_the_service_gets_its_own_role(url: str) -> None:
    access = service_access(CommonSettings(database_url=url), "payouts")
    assert access.admin_url == url
    assert urlsplit(access.url).username == "cq_payouts"


def test_login_roles_are_named_per_service() -> None:
    names = {db_roles.login_role(s) for s in ("submissions", "scoring", "leaderboard", "payouts")}
    assert names == {"cq_submissions", "cq_scoring", "cq_leaderboard", "cq_payouts"}
    assert db_roles.MIGRATION_ROLE not in names


@pytest.mark.parametrize("name", ["submissions", "scoring", "leaderboard", "payouts"])
def test_each_services_migrations_form_one_line(name: str) -> None:
    """Two branches adding a revision on the same parent leave two heads: no service would start."""
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option(
        "script_location", str(Path(__file__).resolve().parents[3] / "services" / name / "store" / "migrations")
    )
    assert len(ScriptDirectory.from_config(cfg).get_heads()) == 1
