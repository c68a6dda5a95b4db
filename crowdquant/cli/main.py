"""``crowdquant``: run services, manage the database and keys, check health, run the demo."""

from __future__ import annotations

import os

# One BLAS thread: on small machines OpenBLAS's pool makes the scoring math 100x slower, and each
# service already runs its numeric work in worker threads. Must be set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import asyncio
import faulthandler
import signal
import sys

import typer

from crowdquant.cli import operator, participant
from crowdquant.cli.common import console, fail, friendly
from shared.config import CommonSettings, load_settings

if hasattr(signal, "SIGUSR1"):
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack (stuck process)

app = typer.Typer(
    help="crowdquant: the back office of a crowd-sourced prediction tournament.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The database: migrations, the embedded server.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (bootstrap straight into the database).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
participant.register(app)
operator.register(app)


@app.command()
@friendly
def serve(name: str = typer.Argument(..., help="submissions | scoring | leaderboard | payouts | gateway")) -> None:
    """Run one service until SIGTERM/SIGINT."""
    from services.registry import SERVICES, load
    from shared.db import service_access
    from shared.logging import configure_logging
    from shared.rpc.server import serve_forever

    if name == "gateway":
        from services.gateway.server import serve as serve_gateway
        from services.gateway.settings import GatewaySettings

        serve_gateway(load_settings(GatewaySettings))
        return
    if name not in SERVICES:
        fail(f"unknown service {name!r}; choose one of {', '.join(SERVICES)}", 2)
    spec, settings_cls = load(name)
    settings = load_settings(settings_cls)
    configure_logging(name, settings.log_level, settings.log_format)
    asyncio.run(serve_forever(spec, settings, service_access(settings, name)))


@app.command()
@friendly
def health(
    addr: str = typer.Option("127.0.0.1:50051", help="host:port of a crowdquant service"),
    service: str = typer.Option("", help="service name to check; empty = the whole server"),
    timeout: float = typer.Option(3.0),
    ca_file: str = typer.Option("", envvar="CROWDQUANT_TLS_CA_FILE", help="CA to verify a TLS server"),
) -> None:
    """Exit 0 when the service reports SERVING (for container health checks)."""
    from pathlib import Path

    from crowdquant.cli.probe import check_health

    root_certs = Path(ca_file).read_bytes() if ca_file else None
    status = asyncio.run(check_health(addr, service, timeout, root_certs))
    console.print(f"{addr}: {status}")
    if status != "SERVING":
        raise typer.Exit(1)


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Migrate every service's schema to the newest revision, as the migration role.

    With ``CROWDQUANT_MIGRATION_DATABASE_URL`` (the migration job) only the migrations run: the roles
    already exist. Otherwise ``DATABASE_URL`` (or the embedded server) is an administrator's: the
    database and the roles are made first, then the migrations run as the derived migration role.
    """
    from services.registry import SERVICES, load
    from shared.db import migrate, prepare, resolve_database_url

    settings = load_settings(CommonSettings)
    specs = [load(name)[0] for name in SERVICES]

    async def run() -> None:
        if settings.migration_database_url is not None:
            url = settings.migration_database_url.get_secret_value()
            for spec in specs:
                await migrate(url, spec.schema, spec.migrations)
        else:
            await prepare(resolve_database_url(settings), specs)
        for spec in specs:
            console.print(f"migrated schema [bold]{spec.schema}[/]")

    asyncio.run(run())


@db_app.command("stop")
@friendly
def db_stop() -> None:
    """Stop the embedded PostgreSQL of this data folder."""
    from shared import embedded_pg

    settings = load_settings(CommonSettings)
    stopped = embedded_pg.stop(settings.data_dir)
    console.print("embedded database stopped" if stopped else "embedded database was not running")


@db_app.command("url")
@friendly
def db_url() -> None:
    """Print the database URL the services use (starting the embedded server if needed)."""
    from shared.db import resolve_database_url

    print(resolve_database_url(load_settings(CommonSettings)))


@keys_app.command("create")
@friendly
def keys_create(
    role: str = typer.Option(..., help="participant | operator | auditor | service"),
    participant: str = typer.Option("", help="participant id (for participant keys)"),
    description: str = typer.Option("", help="what the key is for"),
    scope: list[str] = typer.Option(
        [], help="read | submit | stake | keys | operate, repeatable (default: all of the role's)"
    ),
    service: str = typer.Option(
        "", help="for a service key: the service that uses it (submissions | scoring | leaderboard | payouts)"
    ),
) -> None:
    """Create a key directly in the database (bootstrap of the first operator key). Printed once."""
    from crowdquant.cli.bootstrap import create_key
    from shared.auth import Role

    try:
        role_value = Role(role)
    except ValueError:
        fail(f"--role must be one of {', '.join(r.value for r in Role)}", 2)
    key = asyncio.run(
        create_key(load_settings(CommonSettings), role_value, participant, description, scope, service_name=service)
    )
    sys.stdout.write(key + "\n")


@app.command()
@friendly
def demo(
    rounds: int = typer.Option(3, min=1, max=20, help="rounds to run"),
    participants: int = typer.Option(50, min=3, max=500, help="participants to simulate"),
    keep: bool = typer.Option(False, help="leave everything running until Ctrl-C"),
    once: bool = typer.Option(False, help="exit as soon as every service is healthy"),
    small: bool = typer.Option(False, help="small generated data (fast; for tests)"),
) -> None:
    """Run a whole tournament: every service, participants, rounds, payouts, audit."""
    from crowdquant.cli.demo import demo as run

    run(rounds, participants, keep, once, small)


@app.command()
@friendly
def simulate(
    participants: int = typer.Option(50, min=5, max=500, help="participants in the demo's cast"),
    rounds: int = typer.Option(20, min=1, max=200, help="rounds to simulate"),
    seed: int = typer.Option(0, min=0, help="seed of the cast and of every round's data"),
    size: str = typer.Option("full", help="full (the 2016 data size) | small (fast)"),
    policy: str = typer.Option("default", help="default | pool (2016) | stake | pool-corr | pool-mmc-significant"),
    skill_rounds: int = typer.Option(6, min=1, max=100, help="fresh rounds that measure each model's true skill"),
    chart: str = typer.Option("simulation.svg", help="where to write the chart of payout against true skill"),
) -> None:
    """Run the demo's cast through the real scoring and allocation code; show where the money goes."""
    from pathlib import Path

    from crowdquant.cli.simulate import report, run_simulation
    from crowdquant.simulation import SimulationConfig
    from shared.errors import InvalidArgument

    config = SimulationConfig(
        participants=participants, rounds=rounds, seed=seed, size=size, policy=policy, skill_rounds=skill_rounds
    )
    try:
        config.validate()
    except InvalidArgument as exc:
        fail(str(exc), 2)
    report(run_simulation(config, console)[policy], console, Path(chart) if chart else None)


if __name__ == "__main__":
    app()
