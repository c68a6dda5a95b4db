"""The architecture's rules, checked on the code as it is.

- The import rules in pyproject's ``[tool.importlinter]`` hold (``lint-imports``): no service imports
  another; ``shared/`` imports no service; the participant client imports no service; domain code
  imports neither grpc, nor stubs, nor the database; only the rpc edge (``api/``, ``peers.py``)
  imports stubs; only the store runs SQL.
- Every service declares the services it calls (``CALLS``); the declarations form an acyclic graph
  along the pipeline, no service's code reaches a contract it does not declare, and at run time a
  service cannot open a channel to an undeclared peer.
"""

from __future__ import annotations

import ast
import importlib
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from shared.config import CommonSettings
from shared.rpc.peers import PeerChannels, UndeclaredPeer

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("submissions", "scoring", "leaderboard", "payouts", "gateway")
CONTRACTS = {"submissions", "scoring", "leaderboard", "payouts"}  # crowdquant.<name>.v1 -> the service serving it


def declared(name: str) -> tuple[str, ...]:
    """The services ``name`` declares it calls (none without a peers module)."""
    if name == "gateway":
        return importlib.import_module("services.gateway.upstream").CALLS
    if not (ROOT / "services" / name / "peers.py").exists():
        return ()
    return importlib.import_module(f"services.{name}.peers").Peers.CALLS


def graph() -> dict[str, tuple[str, ...]]:
    return {name: declared(name) for name in SERVICES}


def contracts_used(name: str) -> set[str]:
    """Every other service whose contract (crowdquant.<service>.v1) the service's code imports."""
    used = set()
    for path in (ROOT / "services" / name).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            for module in modules:
                parts = module.split(".")
                if len(parts) >= 3 and parts[0] == "crowdquant" and parts[2] == "v1" and parts[1] in CONTRACTS:
                    used.add(parts[1])
    return used - {name}


def test_the_declared_calls_form_the_pipelines_acyclic_graph():
    calls = graph()
    for name, peers in calls.items():
        assert set(peers) <= CONTRACTS - {name}, f"{name} declares unknown or own peers: {peers}"
    try:
        order = list(TopologicalSorter(calls).static_order())
    except CycleError as exc:
        pytest.fail(f"the declared calls form a cycle: {exc.args[1]}")
    # upstream first: whoever is called comes before its callers
    assert order.index("submissions") < order.index("scoring") < order.index("payouts") < order.index("leaderboard")
    assert calls["submissions"] == ()


@pytest.mark.parametrize("name", SERVICES)
def test_no_service_reaches_a_contract_it_does_not_declare(name):
    assert contracts_used(name) <= set(declared(name)), (
        f"services/{name} imports the contracts of {sorted(contracts_used(name) - set(declared(name)))} "
        f"but declares only {declared(name)}"
    )


def test_a_cycle_or_an_undeclared_call_is_caught():
    """The checks above would fail on the graph the services had before their calls were declared."""
    before = {**graph(), "submissions": ("scoring",), "scoring": ("submissions", "payouts", "leaderboard")}
    with pytest.raises(CycleError):
        list(TopologicalSorter(before).static_order())


def test_a_service_cannot_open_a_channel_to_an_undeclared_peer():
    scoring = importlib.import_module("services.scoring.peers").Peers(CommonSettings())
    with pytest.raises(UndeclaredPeer, match="payouts"):
        _ = scoring.payouts
    with pytest.raises(UndeclaredPeer, match="leaderboard"):
        _ = scoring.leaderboard
    assert PeerChannels.CALLS == ()
