"""The local cluster gives every service its own port, even when the system hands one out twice."""

from __future__ import annotations

from pathlib import Path

from crowdquant.cli import cluster


def test_every_service_gets_its_own_port(monkeypatch) -> None:
    offered = iter([5000, 5000, 5001, 5000, 5001, 5002, 5003, 5003, 5004, 5005])
    monkeypatch.setattr(cluster, "free_port", lambda: next(offered))
    monkeypatch.setattr(cluster, "gateway_available", lambda: True)
    c = cluster.Cluster(database_url="postgresql://x/y", service_key="k", log_dir=Path("."), with_gateway=True)
    ports = [*c.ports.values(), c.gateway_port]
    assert len(ports) == len(set(ports)) == len(cluster.SERVICES) + 1
