"""The local cluster gives every service its own port, even when the system hands one out twice."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from crowdquant.cli import cluster
from shared import db_roles


def test_every_service_gets_its_own_port(monkeypatch) -> None:
    offered = iter([5000, 5000, 5001, 5000, 5001, 5002, 5003, 5003, 5004, 5005])
    monkeypatch.setattr(cluster, "free_port", lambda: next(offered))
    monkeypatch.setattr(cluster, "gateway_available", lambda: True)
    c = cluster.Cluster(database_url="postgresql://x/y", service_keys={}, log_dir=Path("."), with_gateway=True)
    ports = [*c.ports.values(), c.gateway_port]
    assert len(ports) == len(set(ports)) == len(cluster.SERVICES) + 1


def test_each_process_gets_only_its_own_secrets(monkeypatch) -> None:
    monkeypatch.setattr(cluster, "gateway_available", lambda: True)
    monkeypatch.setenv("CROWDQUANT_SERVICE_API_KEY", "k_parent.secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://parent/db")
    keys = {name: f"k_{name}.secret" for name in cluster.SERVICES}
    c = cluster.Cluster(database_url="postgresql://x/y", service_keys=keys, log_dir=Path("."), with_gateway=True)
    for name in cluster.SERVICES:
        env = c.child_env(name)
        assert env["CROWDQUANT_SERVICE_API_KEY"] == keys[name]
        # its own database role only, never the administrator's URL the cluster was given
        assert env["DATABASE_URL"] == db_roles.derive_url("postgresql://x/y", db_roles.login_role(name))
        assert urlsplit(env["DATABASE_URL"]).username == f"cq_{name}"
    gateway = c.child_env("gateway")
    assert not {k for k in gateway if "API_KEY" in k or k.startswith("DATABASE_URL")}, "the gateway holds no secret"
    assert gateway["CROWDQUANT_LEADERBOARD_ADDR"] == c.addr("leaderboard")
