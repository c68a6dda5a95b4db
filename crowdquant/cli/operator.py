"""Operator and auditor commands: drive a round's pipeline, and audit the ledger."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from crowdquant.cli.common import console, friendly
from crowdquant.common.v1 import common_pb2

KEY = typer.Option(
    ...,
    "--api-key",
    envvar=["CROWDQUANT_OPERATOR_API_KEY", "CROWDQUANT_API_KEY"],
    help="operator (or auditor, for audit) key",
    show_default=False,
)
TOURNAMENT = typer.Option(..., "--tournament", "-t", envvar="CROWDQUANT_TOURNAMENT", help="tournament id")
ROUND = typer.Option("latest", "--round", "-r", help="round number, or 'latest'")


def round_number(value: str) -> int:
    if value in ("latest", "0", ""):
        return 0
    if not value.isdigit():
        raise typer.BadParameter("--round must be a round number or 'latest'")
    return int(value)


round_app = typer.Typer(help="One step of a round's pipeline at a time.", no_args_is_help=True)
pipeline_app = typer.Typer(help="The whole remaining pipeline of a round.", no_args_is_help=True)
audit_app = typer.Typer(help="Read-only ledger audit (auditor or operator key).", no_args_is_help=True)


def _pipeline(api_key: str):  # type: ignore[no-untyped-def]
    from crowdquant.pipeline import Addresses, Pipeline

    return Pipeline(Addresses.from_env(), api_key, log=lambda m: console.print(f"[dim]{m}…[/]"))


def _ref(tournament: str, number: int) -> common_pb2.RoundRef:
    return common_pb2.RoundRef(tournament_id=tournament, round_number=number)


def _show_round(r) -> None:  # type: ignore[no-untyped-def]
    state = type(r).State.Name(r.state).removeprefix("STATE_")
    console.print(
        f"round {r.round.tournament_id} #{r.round.round_number}: {state}; {r.model_count} models, "
        f"{r.submission_count} uploads; commitment {r.commitment_sha256}"
    )


@round_app.command("open")
@friendly
def round_open(
    tournament: str = TOURNAMENT, seed: int = typer.Option(0, help="generated data seed"), api_key: str = KEY
) -> None:
    """Open the next round with generated data."""
    from crowdquant.submissions.v1 import submissions_service_pb2 as pb

    p = _pipeline(api_key)
    _show_round(p.open(tournament, pb.GeneratedDatasetSpec(seed=seed)))


@round_app.command("status")
@friendly
def round_status(tournament: str = TOURNAMENT, number: str = ROUND, api_key: str = KEY) -> None:
    """A round's state and counts."""
    _show_round(_pipeline(api_key).round(_ref(tournament, round_number(number))))


def zero_payout_text(reason: common_pb2.PayoutReason) -> str:
    """A zero payout's reason for people: "NOT_ORIGINAL: not original: |Pearson| 0.9999 with ..."."""
    code = common_pb2.ZeroPayoutReason.Name(reason.code).removeprefix("ZERO_PAYOUT_REASON_")
    return f"{code}: {reason.detail}" if reason.detail else code


def allocation_table(allocation) -> Table:  # type: ignore[no-untyped-def]
    """Each model's amount and, beside a 0 (or a burn, or a balance carried under the dust limit), why."""
    table = Table(title=f"round {allocation.round.round_number} allocation: {allocation.total_satoshis:,} sat")
    for column in ("model", "stake (sat)", "contribution", "amount (sat)", "why"):
        table.add_column(column, justify="left" if column in ("model", "why") else "right")
    for line in sorted(allocation.lines, key=lambda x: (-x.amount_satoshis, x.model.display_name)):
        why = zero_payout_text(line.zero_payout) if line.HasField("zero_payout") else ""
        table.add_row(
            line.model.display_name or line.model.model_id,
            f"{line.stake_satoshis:,}",
            f"{line.contribution:.6g}",
            f"{line.amount_satoshis:,}",
            why,
        )
    return table


@round_app.command("allocation")
@friendly
def round_allocation(tournament: str = TOURNAMENT, number: str = ROUND, api_key: str = KEY) -> None:
    """A round's allocation: every model's amount, and why a model got nothing."""
    from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb

    p = _pipeline(api_key)
    ref = p.round(_ref(tournament, round_number(number))).round
    console.print(allocation_table(p.call(p.payouts.GetAllocation, po_pb.GetAllocationRequest(round=ref)).allocation))


def _step(name: str):  # type: ignore[no-untyped-def]
    @friendly
    def command(tournament: str = TOURNAMENT, number: str = ROUND, api_key: str = KEY) -> None:
        p = _pipeline(api_key)
        ref = p.round(_ref(tournament, round_number(number))).round
        action = {
            "close": p.close_round,
            "resolve": p.resolve,
            "score": p.score,
            "publish": p.publish,
            "allocate": p.allocate,
            "pay": p.pay,
        }[name]
        result = action(ref)
        if name == "allocate":
            result = allocation_table(result)
        console.print(result if not isinstance(result, list) else "\n".join(str(b) for b in result))

    command.__doc__ = f"The {name} step of a round (idempotent)."
    return command


for _name in ("close", "resolve", "score", "publish", "allocate", "pay"):
    round_app.command(_name)(_step(_name))


@pipeline_app.command("run")
@friendly
def pipeline_run(
    tournament: str = TOURNAMENT,
    number: str = ROUND,
    until: str = typer.Option("pay", help="last step: close|resolve|score|publish|allocate|pay"),
    api_key: str = KEY,
) -> None:
    """Run the remaining steps of a round; safe to re-run after any failure (it resumes)."""
    p = _pipeline(api_key)
    outcome = p.run(_ref(tournament, round_number(number)), until=until)
    done = ", ".join(outcome.steps_done) or "nothing left to do"
    console.print(f"round {outcome.ref.round_number}: {done}; now {outcome.state}")
    for batch in outcome.batches:
        console.print(f"  batch {batch.batch_id} txid {batch.txid} fee {batch.fee_satoshis} sat")


@audit_app.command("trial-balance")
@friendly
def audit_trial_balance(api_key: str = KEY) -> None:
    """Every account's balance; debits must equal credits."""
    trial = _pipeline(api_key).trial_balance()
    table = Table(title="trial balance")
    for column in ("account", "debit", "credit", "balance"):
        table.add_column(column, justify="left" if column == "account" else "right")
    for line in trial.lines:
        table.add_row(
            line.account_code, f"{line.debit_satoshis:,}", f"{line.credit_satoshis:,}", f"{line.balance_satoshis:,}"
        )
    console.print(table)
    console.print("balanced" if trial.balanced else "[red]NOT BALANCED[/]")
    if not trial.balanced:
        raise typer.Exit(1)


@audit_app.command("verify-chain")
@friendly
def audit_verify_chain(api_key: str = KEY) -> None:
    """Recompute the ledger's hash chain."""
    result = _pipeline(api_key).verify_chain()
    if result.ok:
        console.print(f"chain verified: {result.entries_checked:,} entries")
        return
    console.print(
        f"[red]chain broken[/] at entry {result.first_bad_entry_id}: expected {result.expected_hash}, "
        f"stored {result.actual_hash}"
    )
    raise typer.Exit(1)


@audit_app.command("statement")
@friendly
def audit_statement(participant: str = typer.Argument(...), api_key: str = KEY) -> None:
    """A participant's statement: opening, lines, closing."""
    from crowdquant.payouts.v1 import ledger_audit_service_pb2 as au_pb

    p = _pipeline(api_key)
    console.print(p.call(p.audit.GetStatement, au_pb.GetStatementRequest(participant_id=participant)))


@audit_app.command("trace")
@friendly
def audit_trace(participant: str = typer.Argument(...), api_key: str = KEY) -> None:
    """Follow a participant's money: allocation -> batch -> txid -> output index."""
    from crowdquant.payouts.v1 import ledger_audit_service_pb2 as au_pb

    p = _pipeline(api_key)
    console.print(p.call(p.audit.TracePayout, au_pb.TracePayoutRequest(participant_id=participant)))


@audit_app.command("export")
@friendly
def audit_export(api_key: str = KEY) -> None:
    """Every ledger posting as CSV on standard output."""
    from crowdquant.payouts.v1 import ledger_audit_service_pb2 as au_pb

    p = _pipeline(api_key)
    for chunk in p.audit.ExportEntries(
        au_pb.ExportEntriesRequest(), metadata=(("authorization", f"Bearer {api_key}"),), timeout=600
    ):
        sys.stdout.write(chunk.csv_text)


def register(app: typer.Typer) -> None:
    app.add_typer(round_app, name="round")
    app.add_typer(pipeline_app, name="pipeline")
    app.add_typer(audit_app, name="audit")
