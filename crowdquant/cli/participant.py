"""Participant commands: rounds, models, data download, submit."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from crowdquant.cli.common import console, friendly

ADDR = typer.Option(
    "127.0.0.1:50051", "--addr", envvar="CROWDQUANT_SUBMISSIONS_ADDR", help="submissions service host:port"
)
KEY = typer.Option(
    None, "--api-key", envvar="CROWDQUANT_API_KEY", help="API key (<key id>.<secret>)", show_default=False
)
TOURNAMENT = typer.Option(..., "--tournament", "-t", envvar="CROWDQUANT_TOURNAMENT", help="tournament id")

data_app = typer.Typer(help="Round data.", no_args_is_help=True)


def _client(addr: str, api_key: str | None):
    from crowdquant.client import Client

    return Client(addr, api_key)


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("rows"), console=console, transient=True
    )


@data_app.command("download")
@friendly
def data_download(
    dest: Path = typer.Argument(Path("data"), help="folder to write into"),
    tournament: str = TOURNAMENT,
    round_number: int = typer.Option(0, "--round", help="0 = latest"),
    fmt: str = typer.Option("csv", "--format", help="csv | parquet (needs pyarrow)"),
    addr: str = ADDR,
    api_key: str | None = KEY,
) -> None:
    """Download a round's training and tournament data."""
    with _client(addr, api_key) as client, _progress("downloading") as progress:
        task = progress.add_task("download", total=None)
        paths = client.download_data(
            tournament,
            dest,
            round_number,
            fmt=fmt,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    for path in paths:
        console.print(f"wrote {path}")


def submit(
    predictions: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV (id,prediction)"),
    model: str = typer.Option(..., "--model", "-m", help="model name or id"),
    tournament: str = TOURNAMENT,
    round_number: int = typer.Option(0, "--round", help="0 = latest"),
    addr: str = ADDR,
    api_key: str | None = KEY,
) -> None:
    """Upload predictions and print the verified receipt."""
    with _client(addr, api_key) as client, _progress("uploading") as progress:
        task = progress.add_task("upload", total=None)
        receipt = client.submit(
            tournament,
            predictions,
            model=model,
            round_number=round_number,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    table = Table(title="receipt (signature verified)", show_header=False)
    for name, value in (
        ("round", f"{receipt.tournament_id} #{receipt.round_number}"),
        ("model", receipt.model_id),
        ("version", receipt.version),
        ("rows", f"{receipt.row_count:,}"),
        ("sha256", receipt.content_sha256),
        ("accepted", receipt.accept_time),
        ("signed by", receipt.key_id),
    ):
        table.add_row(name, str(value))
    sub = receipt.submission
    for check in ("originality", "concordance"):  # target-free checks only; consistency is judged at resolve
        result = getattr(sub, check)
        outcome = type(result).Outcome.Name(result.outcome).removeprefix("OUTCOME_").lower()
        table.add_row(check, f"{outcome}: {result.reason}" if result.reason else outcome)
    console.print(table)


def rounds(tournament: str = TOURNAMENT, addr: str = ADDR, api_key: str | None = KEY) -> None:
    """List a tournament's rounds, newest first."""
    with _client(addr, api_key) as client:
        found = client.rounds(tournament)
    table = Table(title=f"rounds of {tournament}")
    for column in ("round", "state", "validation", "live", "models", "uploads", "commitment"):
        table.add_column(column)
    for r in found:
        table.add_row(
            str(r.round.round_number),
            type(r).State.Name(r.state).removeprefix("STATE_").lower(),
            f"{r.validation_rows:,}",
            f"{r.live_rows:,}",
            str(r.model_count),
            str(r.submission_count),
            r.commitment_sha256[:16] + "…",
        )
    console.print(table)


def models(
    tournament: str = typer.Option("", "--tournament", "-t", envvar="CROWDQUANT_TOURNAMENT"),
    addr: str = ADDR,
    api_key: str | None = KEY,
) -> None:
    """List your models."""
    with _client(addr, api_key) as client:
        found = client.models(tournament)
    table = Table(title="models")
    for column in ("model id", "name", "tournament", "payout address"):
        table.add_column(column)
    for m in found:
        table.add_row(m.model_id, m.display_name, m.tournament_id, m.payout_address)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
    app.command("submit")(friendly(submit))
    app.command("rounds")(friendly(rounds))
    app.command("models")(friendly(models))
