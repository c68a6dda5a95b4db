"""Services killed with SIGKILL during a tournament change no result.

Each test plays the same small demo tournament as an uninterrupted ("calm") run and compares every
score, every allocation line and every payee output with it:

- every service is killed in the middle of a round's pipeline and restarted;
- the payouts process is killed at random moments (seeded delays) through whole demo rounds, from the
  deposits and stakes through uploads, scoring, publishing, allocation, batching and confirmation.
  Afterwards every transaction it ever signed is decoded and its signatures checked with embit, not
  with the payouts code: each payee is paid exactly once, and the ledger balances, verifies and
  reconciles.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console

from crowdquant.cli.cluster import Cluster
from crowdquant.common.v1 import common_pb2
from crowdquant.demo.run import TOURNAMENT, Demo
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from services.registry import SERVICES
from shared.rpc.client import RECONNECT_OPTIONS
from tests.integration.payouts import chain

pytestmark = pytest.mark.slow
ROUNDS = 3
PARTICIPANTS = 8
SERVING = health_pb2.HealthCheckResponse.SERVING


def comparable(values: tuple[float, ...]) -> tuple[float | str, ...]:
    """NaN (the correlation of a constant model) never equals itself; compare it as a word."""
    return tuple("nan" if math.isnan(v) else v for v in values)


def differences(got: dict, want: dict) -> list[str]:
    """Readable differences between two `results` dicts: one line per differing value."""
    lines = []
    for number in sorted(set(got) | set(want)):
        for part in ("scores", "allocation"):
            a, b = got.get(number, {}).get(part, {}), want.get(number, {}).get(part, {})
            lines += [
                f"round {number} {part} {name}: {a.get(name)} != {b.get(name)}"
                for name in sorted(set(a) | set(b))
                if a.get(name) != b.get(name)
            ]
        a, b = got.get(number, {}).get("outputs"), want.get(number, {}).get("outputs")
        if a != b:
            lines.append(f"round {number} outputs: {a} != {b}")
    return lines


def ref(number: int) -> common_pb2.RoundRef:
    return common_pb2.RoundRef(tournament_id=TOURNAMENT, round_number=number)


def results(demo: Demo, rounds: int) -> dict[int, dict]:
    """Per round: scores, allocation lines and payee outputs, keyed by participant names (ids differ per run)."""
    p = demo.pipeline
    names = {pl.model_id: pl.profile.name for pl in demo.players}
    out = {}
    for number in range(1, rounds + 1):
        scores = p.call(
            p.scoring.ListRoundScores, sc_pb.ListRoundScoresRequest(round=ref(number), page_size=1000)
        ).scores
        allocation = p.call(p.payouts.GetAllocation, po_pb.GetAllocationRequest(round=ref(number))).allocation
        outputs = sorted(
            (o.address, o.amount_satoshis)
            for b in p.round_batches(ref(number))
            if b.state != po_pb.Batch.STATE_VOIDED
            for o in b.outputs
        )
        out[number] = {
            "scores": {
                names[s.model.model_id]: comparable((s.logloss.mean, s.corr.mean, s.mmc.mean, s.meta_weight))
                for s in scores
            },
            "allocation": {
                names[line.model.model_id]: (line.amount_satoshis, line.eligible) for line in allocation.lines
            },
            "outputs": outputs,
        }
    return out


class DemoRun:
    """One small demo tournament in its own database, every service its own process."""

    def __init__(self, postgres, directory: Path) -> None:  # type: ignore[no-untyped-def]
        self.postgres = postgres
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.url = asyncio.run(postgres.create_database(directory.name))
        self.demo = Demo(
            Console(file=(directory / "out.txt").open("w"), width=140),
            rounds=ROUNDS,
            participants=PARTICIPANTS,
            small=True,
            database_url=self.url,
            data_dir=directory,
        )

    def __enter__(self) -> Demo:
        self.demo.start()
        return self.demo

    def __exit__(self, *exc: object) -> None:
        self.demo.stop()
        asyncio.run(self.postgres.drop_database(self.url))

    def finish(self, rounds: int) -> dict[int, dict]:
        p = self.demo.pipeline
        for number in range(1, rounds + 1):
            assert p.round(ref(number)).state == p.round(ref(number)).STATE_PAID
        assert self.demo.audit(), (self.directory / "out.txt").read_text()
        return results(self.demo, rounds)


@pytest.fixture(scope="module")
def calm(postgres, tmp_path_factory) -> dict[int, dict]:  # type: ignore[no-untyped-def]
    run = DemoRun(postgres, tmp_path_factory.mktemp("calm"))
    with run as demo:
        demo.setup_tournament()
        for number in range(1, ROUNDS + 1):
            demo.play_round(number)
        return run.finish(ROUNDS)


def test_service_kills_mid_pipeline_change_no_result(calm, postgres, tmp_path: Path):
    run = DemoRun(postgres, tmp_path / "killed")
    with run as demo:
        demo.setup_tournament()
        demo.play_round(1, run_pipeline=False)
        p = demo.pipeline
        for step, victim in zip(
            ("close", "resolve", "score", "publish", "allocate", "pay"),
            (*SERVICES, "submissions", "payouts"),
            strict=True,
        ):
            demo.cluster.kill(victim)
            demo.cluster.start(victim)
            status = asyncio.run(demo.cluster.wait_healthy())
            assert all(s == "SERVING" for s in status.values()), status
            p.run(ref(1), until=step)
        p.run(ref(1))
        killed = run.finish(1)
    assert calm[1]["outputs"]
    assert not differences({1: killed[1]}, {1: calm[1]})


class PayoutsKiller(threading.Thread):
    """SIGKILLs the payouts process a random time (seeded) after it becomes healthy, or now and then
    while it is still starting, and restarts it, until stopped. Each kill is recorded with what the
    tournament was doing at that moment."""

    def __init__(self, cluster: Cluster, seed: int, doing: Callable[[], str]) -> None:
        super().__init__(name="payouts-killer", daemon=True)
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.doing = doing
        self.stopping = threading.Event()
        self.kills: list[str] = []
        self.error: BaseException | None = None

    def wait_serving(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.cluster.addr("payouts"), options=RECONNECT_OPTIONS) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while not self.stopping.is_set():
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == SERVING:
                        return
                except grpc.RpcError:
                    pass
                assert time.monotonic() < deadline, "payouts did not come back within a minute"
                time.sleep(0.1)

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                starting = self.rng.random() < 0.25  # sometimes while it starts: migrations, recovery
                if not starting:
                    self.wait_serving()
                if self.stopping.wait(self.rng.uniform(0.2, 1.5) if starting else self.rng.uniform(0.1, 2.0)):
                    return
                self.cluster.kill("payouts")
                self.kills.append(("starting, " if starting else "") + self.doing())
                self.cluster.start("payouts")
        except BaseException as exc:  # reported by the test
            self.error = exc

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        assert self.error is None, repr(self.error)


@pytest.fixture
def killed_demo(postgres, tmp_path: Path) -> Iterator[tuple[DemoRun, Demo]]:  # type: ignore[no-untyped-def]
    run = DemoRun(postgres, tmp_path / "chaos")
    with run as demo:
        yield run, demo


def test_payouts_killed_at_random_times_through_whole_rounds(calm, killed_demo):
    run, demo = killed_demo
    now = {"round": 0, "step": "deposits and stakes"}
    demo.pipeline.log = lambda step: now.update(step=step)
    killer = PayoutsKiller(demo.cluster, seed=20261123, doing=lambda: f"round {now['round']}: {now['step']}")
    killer.start()
    try:
        demo.setup_tournament()
        for number in range(1, ROUNDS + 1):
            now.update(round=number, step="uploads")
            demo.play_round(number)
    finally:
        killer.stop()
    print(f"{len(killer.kills)} kills of payouts:", *killer.kills, sep="\n  ")
    assert len(killer.kills) >= 3, killer.kills
    status = asyncio.run(demo.cluster.wait_healthy())
    assert all(s == "SERVING" for s in status.values()), status
    chaos = run.finish(ROUNDS)
    assert not differences(chaos, calm)
    asyncio.run(paid_exactly_once(demo, run.url))


async def paid_exactly_once(demo: Demo, database_url: str) -> None:
    """Every transaction ever signed, decoded and verified with embit: only the confirmed ones can
    confirm (every other one spends a coin a confirmed one spends), and the confirmed outputs pay each
    participant exactly its allocations."""
    p = demo.pipeline
    batches = [b for number in range(1, ROUNDS + 1) for b in p.round_batches(ref(number))]
    assert {b.state for b in batches} <= {po_pb.Batch.STATE_CONFIRMED, po_pb.Batch.STATE_VOIDED}
    confirmed = [b for b in batches if b.state == po_pb.Batch.STATE_CONFIRMED]
    decoded = await chain.only_confirmed_can_confirm(database_url, [b.raw_tx_hex for b in confirmed])
    owner = {o.address: o.participant_id for b in batches for o in b.outputs}
    on_chain: dict[str, int] = defaultdict(int)
    for tx in decoded.values():
        for address, amount in tx.outputs:
            if address in owner:
                on_chain[owner[address]] += amount
    owed: dict[str, int] = defaultdict(int)
    for number in range(1, ROUNDS + 1):
        allocation = p.call(p.payouts.GetAllocation, po_pb.GetAllocationRequest(round=ref(number))).allocation
        for line in allocation.lines:
            owed[line.model.participant_id] += max(line.amount_satoshis, 0)
    assert dict(on_chain) == {k: v for k, v in owed.items() if v}
