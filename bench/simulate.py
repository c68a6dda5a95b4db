"""Benchmark of the payout policies: where the money goes, at the 2016 data size, beside the goals.

    python bench/simulate.py                        # 50 participants, 20 rounds, seed 0, full size
    python bench/simulate.py --size small --rounds 8 --chart-dir .

The demo's cast plays ``--rounds`` rounds once (the services' own generator, participants, originality
check and scoring, live rows only over six eras); the same scored rounds are then allocated under the
tournament's default payout rules and under the 2016 pool, so the two are compared on identical data.
Each model's true skill is its expected live CORR on fresh rounds of the same generator. Goals (issue
15): no-skill kinds (noise, constant, copies) <= 2% of all payouts, Spearman(true skill, total
payout) >= 0.8, the best good model out-earns every weak model. Exits 1 if the default misses one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from crowdquant.cli.simulate import goals, run_simulation, table
from crowdquant.simulation import SimulationConfig, figures
from crowdquant.simulation.figures import chart_svg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="full", choices=("full", "small"))
    parser.add_argument("--skill-rounds", type=int, default=6)
    parser.add_argument("--chart-dir", default="", help="write simulation-<policy>.svg here")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 140))
    config = SimulationConfig(
        participants=args.participants,
        rounds=args.rounds,
        seed=args.seed,
        size=args.size,
        skill_rounds=args.skill_rounds,
    )
    started = time.perf_counter()
    sims = run_simulation(config, console, policies=("pool", "default"))
    elapsed = time.perf_counter() - started
    summary = Table(
        title=f"payout policies, {args.participants} participants x {args.rounds} rounds "
        f"({args.size} size, seed {args.seed}) in {elapsed:.0f} s"
    )
    for column in ("figure", "2016 pool", "default", "goal", "default meets it"):
        summary.add_column(column)
    rows = {name: goals(figures(sim)) for name, sim in sims.items()}
    for before, after in zip(rows["pool"], rows["default"], strict=True):
        summary.add_row(after[0], before[1], after[1], after[2], "yes" if after[3] else "[red]NO")
    for name, sim in sims.items():
        console.print(table(figures(sim)))
        if args.chart_dir:
            path = Path(args.chart_dir) / f"simulation-{name}.svg"
            path.write_text(chart_svg(sim, f"payout against true skill: {args.rounds} rounds, policy {name}"))
            console.print(f"chart: {path}")
    console.print(summary)
    return 0 if figures(sims["default"]).goals_met else 1


if __name__ == "__main__":
    sys.exit(main())
