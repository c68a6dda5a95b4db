"""``crowdquant demo``: the embedded database and every service on loopback, with their health."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from rich.table import Table

from crowdquant.cli.bootstrap import create_key
from crowdquant.cli.cluster import Cluster
from crowdquant.cli.common import console
from services.registry import SERVICES
from shared.auth import Role
from shared.config import CommonSettings, load_settings
from shared.db import resolve_database_url


def run_demo(*, rounds: int, participants: int, keep: bool, once: bool) -> None:
    settings = load_settings(CommonSettings)
    with console.status("starting the embedded PostgreSQL"):
        url = resolve_database_url(settings)
    service_key = asyncio.run(create_key(settings, Role.SERVICE, "", "demo services", [], url=url))
    cluster = Cluster(database_url=url, service_key=service_key, log_dir=Path(settings.data_dir) / "logs")
    try:
        with console.status("starting the services"):
            cluster.start_all()
            status = asyncio.run(cluster.wait_healthy())
        table = Table(title="crowdquant services")
        for column in ("service", "address", "health"):
            table.add_column(column)
        for name in SERVICES:
            colour = "green" if status[name] == "SERVING" else "red"
            table.add_row(name, cluster.addr(name), f"[{colour}]{status[name]}[/]")
        console.print(table)
        healthy = sum(s == "SERVING" for s in status.values())
        console.print(f"{healthy} of {len(SERVICES)} services healthy; logs in {cluster.log_dir}")
        if healthy != len(SERVICES):
            raise SystemExit(1)
        if once:
            return
        console.print("running; press Ctrl-C to stop")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            signal.pause()
        except KeyboardInterrupt:
            console.print("stopping")
    finally:
        cluster.stop()
