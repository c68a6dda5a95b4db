"""The services crowdquant runs, by name (imported lazily so one service loads only its code)."""

from __future__ import annotations

import importlib
from typing import Any

SERVICES: tuple[str, ...] = ("submissions", "scoring", "leaderboard", "payouts")


def load(name: str) -> tuple[Any, type]:
    """The ServiceSpec and settings class of service ``name``."""
    if name not in SERVICES:
        raise KeyError(f"unknown service {name!r}; choose one of {', '.join(SERVICES)}")
    server = importlib.import_module(f"services.{name}.server")
    settings = importlib.import_module(f"services.{name}.settings")
    cls = getattr(settings, f"{name.capitalize()}Settings")
    return server.SPEC, cls
