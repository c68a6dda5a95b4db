"""Fault injection for crash tests: kill the process at a named state change.

Inert unless ``CROWDQUANT_FAULT_POINTS`` is set. Its value is a comma-separated list of points, each
optionally with the occurrence to fire on, e.g. ``batch.signed,batch.broadcast:2`` (kill at the first
``batch.signed`` and at the second ``batch.broadcast``). When a point fires the process sends itself
SIGKILL: no ``finally`` block, no graceful shutdown, no flushed buffers, exactly like a power cut, so
the test proves recovery from whatever was committed at that instant.

Points (each right after the state change it names was committed or performed):
``deposit.recorded``, ``stake.set``, ``allocation.recorded``, ``batch.planned``, ``wallet.funded``
(test coins created, funding not yet booked), ``funding.recorded``, ``batch.signed`` (raw transaction
stored, not broadcast), ``batch.sent`` (broadcast accepted, state not yet stored), ``batch.broadcast``,
``batch.mined`` (confirmation seen, ledger not yet posted), ``batch.confirmed``, ``batch.bump_signed``
(replacement stored, not broadcast), ``batch.voided``, ``round.paid`` (submissions told, not yet
noted here).

In-process tests call :func:`set_action` to raise instead of dying, so a "crash" leaves the server up.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from shared.config import ConfigError
from shared.logging import get_logger

ENV = "CROWDQUANT_FAULT_POINTS"
POINTS = frozenset(
    {
        "deposit.recorded",
        "stake.set",
        "allocation.recorded",
        "batch.planned",
        "wallet.funded",
        "funding.recorded",
        "batch.signed",
        "batch.sent",
        "batch.broadcast",
        "batch.mined",
        "batch.confirmed",
        "batch.bump_signed",
        "batch.voided",
        "round.paid",
    }
)

log = get_logger("crowdquant.payouts.faults")


class InjectedFault(Exception):
    """Raised instead of SIGKILL by in-process tests (see :func:`set_action`)."""


def parse(value: str) -> dict[str, int]:
    """``"a,b:2"`` -> ``{"a": 1, "b": 2}``; unknown names or bad counts are a configuration error."""
    wanted: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, count = item.partition(":")
        if name not in POINTS:
            raise ConfigError(f"{ENV}: unknown fault point {name!r}; known: {', '.join(sorted(POINTS))}")
        if count and (not count.isdigit() or int(count) < 1):
            raise ConfigError(f"{ENV}: occurrence of {name!r} must be a positive integer, not {count!r}")
        wanted[name] = int(count or 1)
    return wanted


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class FaultPoints:
    """Counts how often each point is reached and fires the configured ones once."""

    def __init__(self, wanted: dict[str, int], action: Callable[[], None] = _kill) -> None:
        self.wanted = dict(wanted)
        self.seen: dict[str, int] = {}
        self.action = action

    def reach(self, name: str) -> None:
        if not self.wanted:
            return
        self.seen[name] = self.seen.get(name, 0) + 1
        if self.wanted.get(name) == self.seen[name]:
            log.warning("fault point fired", point=name, occurrence=self.seen[name])
            self.action()


_points: FaultPoints | None = None


def configure() -> None:
    """Read ``CROWDQUANT_FAULT_POINTS`` (at start-up, so a bad value stops the service with one line)."""
    global _points
    _points = FaultPoints(parse(os.environ.get(ENV, "")))


def reach(name: str) -> None:
    """Mark that the process passed ``name``; kills it there when so configured."""
    if _points is None:
        configure()
    assert _points is not None
    _points.reach(name)


def set_action(wanted: dict[str, int], action: Callable[[], None]) -> None:
    """Tests: arm ``wanted`` points with ``action`` (e.g. raising InjectedFault); empty disarms."""
    global _points
    _points = FaultPoints(wanted, action)


def reset() -> None:
    """Back to what the environment says (tests call it when they are done)."""
    configure()
