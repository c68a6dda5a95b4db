"""Run every service as its own process on loopback ports (the demo, end-to-end tests).

Each child is ``python -m crowdquant.cli.main serve <name>``. ``database_url`` is an administrator's
and stays in this process: before the first child starts, a one-shot ``crowdquant db upgrade`` makes
the roles and migrates every schema (as the migration role). A service then gets its own database
role's URL and its own key only (``service_keys[name]``); the gateway gets neither: it calls only
the leaderboard's public reads, anonymously. Logs go to ``<log_dir>/<name>.log``; children get
SIGTERM on stop and SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from crowdquant.cli.probe import check_health
from services.registry import SERVICES
from shared import db_roles


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def gateway_available() -> bool:
    """Whether this installation has the HTTP gateway (``crowdquant serve gateway``)."""
    try:
        return importlib.util.find_spec("services.gateway.server") is not None
    except ModuleNotFoundError:
        return False


@dataclass
class Cluster:
    database_url: str
    service_keys: dict[str, str]
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    with_gateway: bool = False
    gateway_port: int = 0
    migrated: bool = False

    def __post_init__(self) -> None:
        # Each port is free when chosen, but the system may hand the same one out again once it is
        # released: keep asking until every service of this cluster has its own.
        taken = set(self.ports.values())

        def distinct() -> int:
            port = free_port()
            while port in taken:
                port = free_port()
            taken.add(port)
            return port

        for name in SERVICES:
            if name not in self.ports:
                self.ports[name] = distinct()
        if self.with_gateway and gateway_available():
            self.gateway_port = distinct()

    def addr(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def child_env(self, name: str) -> dict[str, str]:
        """The environment of child ``name``: only its own secrets (none for the gateway).

        A service's database URL is its own role's, derived from the administrator's URL.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CROWDQUANT_", "DATABASE_URL"))}
        env.update({"CROWDQUANT_GRPC_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"})
        if name in SERVICES:
            env.update(
                {
                    "DATABASE_URL": db_roles.derive_url(self.database_url, db_roles.login_role(name)),
                    "CROWDQUANT_SERVICE_API_KEY": self.service_keys[name],
                }
            )
        for peer in SERVICES:
            env[f"CROWDQUANT_{peer.upper()}_PORT"] = str(self.ports[peer])
            env[f"CROWDQUANT_{peer.upper()}_ADDR"] = self.addr(peer)
        if self.gateway_port:
            env["CROWDQUANT_GATEWAY_PORT"] = str(self.gateway_port)
            env["CROWDQUANT_GATEWAY_HOST"] = "127.0.0.1"
        env.update(self.env)
        return env

    def migrate(self) -> None:
        """The one-shot migration (as ``migrate`` in docker-compose.yml), once per cluster."""
        if self.migrated:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / "migrate.log").open("ab") as log:
            done = subprocess.run(
                [sys.executable, "-m", "crowdquant.cli.main", "db", "upgrade"],
                env={**self.child_env("migrate"), "DATABASE_URL": self.database_url},
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=300,
            )
        if done.returncode != 0:
            tail = (self.log_dir / "migrate.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"migration failed with {done.returncode}:\n{tail}")
        self.migrated = True

    def start(self, name: str) -> None:
        self.migrate()
        log = (self.log_dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "crowdquant.cli.main", "serve", name],
            env=self.child_env(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def start_all(self) -> None:
        for name in SERVICES:
            self.start(name)
        if self.gateway_port:
            self.start("gateway")

    def gateway_healthy(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.gateway_port}/healthz", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    async def wait_healthy(self, names: tuple[str, ...] = SERVICES, timeout: float = 60.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        status: dict[str, str] = {}
        while True:
            for name in names:
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"service {name} exited with {proc.returncode}:\n{tail}")
                status[name] = await check_health(self.addr(name), timeout=2.0)
            gateway_ok = not self.gateway_port or self.gateway_healthy()
            if (all(s == "SERVING" for s in status.values()) and gateway_ok) or time.monotonic() > deadline:
                return status
            await asyncio.sleep(0.2)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def stop(self, grace: float = 10.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
