"""Secrets only where needed: each running process of the local cluster holds only its own.

Read from the kernel (``/proc/<pid>/environ``) of every real process, not from the environment the
cluster meant to hand over: a service holds its own API key and its own database role's URL, never
another service's key, the administrator's URL or the wallet secret of payouts; the gateway holds no
key and no database URL at all.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from crowdquant.cli.bootstrap import create_service_keys
from crowdquant.cli.cluster import SERVICES, Cluster, gateway_available
from shared.config import CommonSettings

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


async def test_each_process_holds_only_its_own_secrets(database_url, tmp_path, monkeypatch):
    keys = await create_service_keys(CommonSettings(), "secrets", url=database_url)
    # secrets of the parent (an operator's shell) that no child may inherit
    wallet_secret = "wallet-secret-of-the-parent-shell"
    monkeypatch.setenv("CROWDQUANT_WALLET_SECRET", wallet_secret)
    monkeypatch.setenv("DATABASE_URL", database_url)
    cluster = Cluster(
        database_url, keys, tmp_path / "logs", with_gateway=True, env={"CROWDQUANT_DATA_DIR": str(tmp_path / "data")}
    )
    cluster.start_all()
    try:
        status = await cluster.wait_healthy(timeout=120)
        assert all(s == "SERVING" for s in status.values()), status
        found = {name: environ(proc.pid) for name, proc in cluster.procs.items()}
    finally:
        cluster.stop(grace=5)
    admin = urlsplit(database_url)
    for name in SERVICES:
        env = found[name]
        assert env["CROWDQUANT_SERVICE_API_KEY"] == keys[name]
        values = "\n".join(env.values())
        others = [other for other in SERVICES if other != name and keys[other] in values]
        assert not others, f"{name} holds the keys of {others}"
        assert urlsplit(env["DATABASE_URL"]).username == f"cq_{name}", f"{name} logs in as another role"
        assert not any(v == database_url or (admin.password and admin.password in v) for v in env.values())
        assert wallet_secret not in values
    if gateway_available():
        gateway = "\n".join(f"{k}={v}" for k, v in found["gateway"].items())
        assert "DATABASE_URL" not in gateway and "API_KEY" not in gateway, "the gateway holds no secret"
        assert not any(key in gateway for key in keys.values())
