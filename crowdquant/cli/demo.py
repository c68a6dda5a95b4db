"""``crowdquant demo`` entry point (the tournament itself is in ``crowdquant.demo``)."""

from __future__ import annotations

import typer

from crowdquant.demo.run import run_demo


def demo(rounds: int, participants: int, keep: bool, once: bool, small: bool) -> None:
    if not run_demo(rounds=rounds, participants=participants, keep=keep, once=once, small=small):
        raise typer.Exit(1)
