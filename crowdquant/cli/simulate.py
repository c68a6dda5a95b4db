"""``crowdquant simulate``: where a payout policy sends the money, with every model's true skill known."""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crowdquant.simulation import Simulation, SimulationConfig, figures, simulate
from crowdquant.simulation.figures import GOALS, KIND_LABELS, Figures, chart_svg


def run_simulation(config: SimulationConfig, console: Console, policies: tuple[str, ...] = ()) -> dict[str, Simulation]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, int] = {}

    def step(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done)

    with progress:
        return simulate(config, step, policies)


def table(fig: Figures) -> Table:
    out = Table(title=f"{fig.rounds} rounds, policy {fig.policy}: {fig.total_paid:,} sat paid")
    for column in (
        "kind of participant",
        "models",
        "entries",
        "paid",
        "share of all payouts",
        "mean true skill",
        "sat/round per 0.01 skill",
    ):
        out.add_column(column, justify="left" if column == "kind of participant" else "right")
    for k in fig.kinds:
        out.add_row(
            KIND_LABELS.get(k.kind, k.kind),
            str(k.models),
            str(k.entries),
            str(k.paid_entries),
            f"{k.share:.1%}",
            f"{k.mean_skill:.4f}",
            "-" if math.isnan(k.sat_per_skill) else f"{k.sat_per_skill:,.0f}",
        )
    return out


def goals(fig: Figures) -> list[tuple[str, str, str, bool]]:
    """(figure, value, goal, met) rows."""
    return [
        (
            "share to no-skill kinds (noise, constant, copies)",
            f"{fig.no_skill_share:.2%}",
            f"<= {GOALS['no_skill_share']:.0%}",
            fig.no_skill_share <= GOALS["no_skill_share"],
        ),
        (
            "Spearman(true skill, total payout)",
            f"{fig.spearman:.3f}",
            f">= {GOALS['spearman']}",
            fig.spearman >= GOALS["spearman"],
        ),
        (
            "best good model vs best-paid weak model",
            f"{fig.best_good} {fig.best_good_paid:,} vs {fig.best_weak} {fig.best_weak_paid:,}",
            "more",
            fig.best_good_beats_weak,
        ),
        ("share to models with true skill <= 0", f"{fig.share_to_no_true_skill:.2%}", "-", True),
    ]


def report(sim: Simulation, console: Console, chart: Path | None) -> Figures:
    fig = figures(sim)
    console.print(table(fig))
    goal_table = Table(title="figures against the goals")
    for column in ("figure", "value", "goal", "met"):
        goal_table.add_column(column)
    for name, value, goal, met in goals(fig):
        goal_table.add_row(name, value, goal, "yes" if met else "[red]no")
    console.print(goal_table)
    if chart is not None:
        chart.write_text(chart_svg(sim, f"payout against true skill: {fig.rounds} rounds, policy {fig.policy}"))
        console.print(f"chart: {chart}")
    return fig
