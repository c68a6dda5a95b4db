"""The payouts service as a real process, killed with SIGKILL again and again, never pays anyone twice.

Submissions and scoring run in this process; payouts runs as ``python -m crowdquant.cli.main serve
payouts`` (``crowdquant.cli.cluster.Cluster``). Every step of two paid rounds (deposits, stakes,
allocations, batches, a fee bump, confirmations, recovery) is first run against a process armed with a
fault point (``CROWDQUANT_FAULT_POINTS``, the process SIGKILLs itself right after that state change),
or killed by the test after a random delay; the process is then restarted clean and the same request
(same request id) repeated until it succeeds. At the end, independently of the payouts code, every
transaction is decoded with embit and its signatures checked: each payee's confirmed outputs sum to
exactly what the ledger paid it, every other transaction ever signed conflicts with a confirmed one
(it can never confirm too), the trial balance is zero, the hash chain verifies and Reconcile is clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import pytest

from crowdquant.cli.bootstrap import create_key, create_service_keys
from crowdquant.cli.cluster import Cluster
from crowdquant.payouts.v1 import ledger_audit_service_pb2 as au_pb
from crowdquant.payouts.v1 import ledger_audit_service_pb2_grpc as au_grpc
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.payouts.v1 import payouts_service_pb2_grpc as po_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from shared.auth import Role
from shared.config import CommonSettings
from tests.integration.conftest import md
from tests.integration.payouts import chain, scenario
from tests.support import start_services, stop_services

pytestmark = pytest.mark.slow
T = "crashy"
KINDS = ("linear", "half", "noise", "copy", "inverse", "constant")
DEADLINE = 60.0


@dataclass
class Harness:
    cluster: Cluster
    stubs: scenario.Stubs
    auditor: str
    channel: grpc.aio.Channel | None = None
    kills: list[str] = field(default_factory=list)

    @property
    def payouts(self) -> po_grpc.PayoutsServiceStub:
        assert self.channel is not None
        return po_grpc.PayoutsServiceStub(self.channel)

    @property
    def audit(self) -> au_grpc.LedgerAuditServiceStub:
        assert self.channel is not None
        return au_grpc.LedgerAuditServiceStub(self.channel)

    async def start(self, fault_points: str = "") -> None:
        """A fresh payouts process (the previous one, if any, is stopped first)."""
        self.cluster.kill("payouts")
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        self.cluster.env["CROWDQUANT_FAULT_POINTS"] = fault_points
        self.cluster.start("payouts")
        status = await self.cluster.wait_healthy(("payouts",), timeout=60)
        assert status["payouts"] == "SERVING", status
        self.channel = grpc.aio.insecure_channel(self.cluster.addr("payouts"))

    def alive(self) -> bool:
        proc = self.cluster.procs.get("payouts")
        return proc is not None and proc.poll() is None

    async def died(self, within: float) -> bool:
        """Whether the process ended, waiting at most ``within`` seconds (a fault kill is immediate)."""
        deadline = time.monotonic() + within
        while True:
            if not self.alive():
                self.cluster.procs.pop("payouts", None)
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)

    def fired_point(self) -> str:
        """The fault point the last process reported just before it killed itself (from its JSON log)."""
        fired = ""
        for line in (self.cluster.log_dir / "payouts.log").read_text(errors="replace").splitlines():
            if '"fault point fired"' in line:
                with contextlib.suppress(ValueError):
                    fired = json.loads(line).get("point", "")
        return fired

    async def step(
        self,
        name: str,
        action: Callable[[], Awaitable[object]],
        *,
        faults: tuple[str, ...] = (),
        kill_after: float | None = None,
    ) -> object:
        """Run ``action`` on processes armed with every fault point still in ``faults`` (the first one
        reached kills it, also while it resumes earlier work at start-up) until none fires any more, and/or
        kill it after ``kill_after`` seconds; then repeat the same request on a clean process until it
        succeeds, and return its result."""
        remaining = list(faults)
        while remaining:
            try:
                await self.start(",".join(sorted(set(remaining))))
                failed = False
                try:
                    await action()
                except grpc.aio.AioRpcError:
                    failed = True
                # a point reached by the start-up recovery may fire just after the call returned
                died = await self.died(within=15 if failed else 0.5)
            except RuntimeError:  # it died while recovering, at an armed point
                self.cluster.procs.pop("payouts", None)
                died = True
            if not died:
                break
            point = self.fired_point()
            assert point in remaining, f"{name}: died at {point!r}, armed {remaining}"
            remaining.remove(point)
            self.kills.append(f"{name}: {point}")
        if kill_after is not None:
            await self.start()
            call = asyncio.ensure_future(action())
            await asyncio.sleep(kill_after)
            self.cluster.kill("payouts")
            self.kills.append(f"{name}: SIGKILL after {kill_after:.2f} s")
            with contextlib.suppress(grpc.aio.AioRpcError):
                await call
        if faults or kill_after is not None:
            await self.start()
        for _ in range(5):
            if not self.alive():
                await self.start()
            try:
                return await action()
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
        raise AssertionError(f"step {name} did not succeed after restarts")


@pytest.fixture
async def harness(database_url, tmp_path):
    settings = CommonSettings()
    service_keys = await create_service_keys(settings, "crash", url=database_url)
    operator = await create_key(settings, Role.OPERATOR, "", "crash", [], url=database_url)
    auditor = await create_key(settings, Role.AUDITOR, "", "crash", [], url=database_url)
    running = await start_services(database_url, service_keys, names=("submissions", "scoring"))
    cluster = Cluster(
        database_url,
        service_keys,
        tmp_path / "logs",
        env={"CROWDQUANT_DATA_DIR": str(tmp_path / "data"), "CROWDQUANT_LOG_LEVEL": "info"},
    )
    for name, svc in running.items():
        cluster.ports[name] = svc.port
        svc.ctx.settings.payouts_addr = cluster.addr("payouts")
    channels = {name: grpc.aio.insecure_channel(svc.address) for name, svc in running.items()}
    channels["payouts"] = grpc.aio.insecure_channel(cluster.addr("payouts"))
    stubs = scenario.stubs_on(channels, operator, database_url)
    h = Harness(cluster, stubs, auditor)
    try:
        yield h
    finally:
        cluster.stop(grace=2)
        if h.channel is not None:
            await h.channel.close()
        for channel in channels.values():
            await channel.close()
        await stop_services(running)


def op(stub_call, request, key: str) -> Callable[[], Awaitable[object]]:  # type: ignore[no-untyped-def]
    return lambda: stub_call(request, metadata=md(key), timeout=DEADLINE)


async def test_payouts_survive_sigkill_at_every_state_change(harness: Harness, database_url: str):
    rng = random.Random(20261123)
    h = harness
    s = h.stubs
    await h.start()
    t = await scenario.tournament(s, T, kinds=KINDS, address_seed=100, tournament_rules=scenario.rules(pool=3_000_000))

    for kind, faults, kill in (("linear", ("deposit.recorded",), None), ("half", (), rng.uniform(0.0, 0.3))):
        player = t.players[kind]
        await h.step(
            f"deposit {kind}",
            lambda pl=player: h.payouts.RecordDeposit(
                po_pb.RecordDepositRequest(
                    request_id=f"dep-{pl.name}", participant_id=pl.participant_id, amount_satoshis=200_000
                ),
                metadata=md(s.operator),
                timeout=DEADLINE,
            ),
            faults=faults,
            kill_after=kill,
        )
    for kind, faults, kill in (("linear", ("stake.set",), None), ("half", (), rng.uniform(0.0, 0.3))):
        player = t.players[kind]
        await h.step(
            f"stake {kind}",
            lambda pl=player: h.payouts.SetStake(
                po_pb.SetStakeRequest(request_id=f"stake-{pl.name}", model_id=pl.model_id, amount_satoshis=100_000),
                metadata=md(pl.key),
                timeout=DEADLINE,
            ),
            faults=faults,
            kill_after=kill,
        )

    refs = [await scenario.scored_round(s, t, seed=seed) for seed in (41, 42)]

    def allocate(index: int) -> Callable[[], Awaitable[object]]:
        return lambda: h.payouts.AllocateRound(
            po_pb.AllocateRoundRequest(request_id=f"alloc-{index}", round=refs[index]),
            metadata=md(s.operator),
            timeout=DEADLINE,
        )

    # Round 1: one batch, confirmed at once; the process dies at every state change on its way.
    await h.step("allocate 1", allocate(0), faults=("allocation.recorded",))
    await h.step(
        "pay round 1",
        lambda: h.payouts.CreateBatch(
            po_pb.CreateBatchRequest(request_id="pay-1", confirm=True, round=refs[0]),
            metadata=md(s.operator),
            timeout=DEADLINE,
        ),
        faults=(
            "batch.planned",
            "wallet.funded",
            "funding.recorded",
            "batch.signed",
            "batch.sent",
            "batch.broadcast",
            "batch.mined",
            "batch.confirmed",
            "round.paid",
        ),
    )

    # Round 2: one unconfirmed batch per payee, one fee bump, then confirmations.
    await h.step("allocate 2", allocate(1), faults=("allocation.recorded",))
    created = await h.step(
        "pay round 2",
        lambda: h.payouts.CreateBatch(
            po_pb.CreateBatchRequest(request_id="pay-2", max_outputs=1, fee_rate_sat_vb=1),
            metadata=md(s.operator),
            timeout=DEADLINE,
        ),
        faults=(
            "batch.planned",
            "batch.signed",
            "batch.sent",
            "batch.broadcast",
            "batch.signed",
            "batch.sent",
            "batch.broadcast",
            "wallet.funded",
        ),
    )
    batches = list(created.batches)  # type: ignore[attr-defined]
    assert len(batches) >= 2 and all(b.state == po_pb.Batch.STATE_BROADCAST for b in batches)
    bumped = await h.step(
        "bump",
        lambda: h.payouts.BumpBatchFee(
            po_pb.BumpBatchFeeRequest(request_id="bump-1", batch_id=batches[0].batch_id, fee_rate_sat_vb=4),
            metadata=md(s.operator),
            timeout=DEADLINE,
        ),
        faults=("batch.bump_signed",),
    )
    assert bumped.batch.replaced_txids == [batches[0].txid]  # type: ignore[attr-defined]
    for index, batch in enumerate(batches):
        last = index == len(batches) - 1
        await h.step(
            f"confirm {index}",
            lambda b=batch: h.payouts.ConfirmBatch(
                po_pb.ConfirmBatchRequest(request_id=f"confirm-{b.batch_id}", batch_id=b.batch_id),
                metadata=md(s.operator),
                timeout=DEADLINE,
            ),
            faults=("batch.mined", "batch.confirmed", "round.paid") if last else ("batch.mined", "batch.confirmed"),
            kill_after=rng.uniform(0.0, 0.4) if index == 1 else None,
        )
    await h.step(
        "recover",
        lambda: h.payouts.RecoverBatches(
            po_pb.RecoverBatchesRequest(request_id="recover"), metadata=md(s.operator), timeout=DEADLINE
        ),
        kill_after=rng.uniform(0.0, 0.3),
    )

    print(f"{len(h.kills)} kills:", *h.kills, sep="\n  ")
    assert len(h.kills) >= 20, "\n".join(h.kills)
    await check_paid_exactly_once(h, t, refs, database_url)


async def check_paid_exactly_once(h: Harness, t: scenario.Tournament, refs, database_url: str) -> None:  # type: ignore[no-untyped-def]
    listed = await h.payouts.ListBatches(po_pb.ListBatchesRequest(page_size=1000), metadata=md(h.auditor))
    states = {b.batch_id: b.state for b in listed.batches}
    assert set(states.values()) <= {po_pb.Batch.STATE_CONFIRMED, po_pb.Batch.STATE_VOIDED}, states
    confirmed = [b for b in listed.batches if b.state == po_pb.Batch.STATE_CONFIRMED]

    # Every transaction ever signed, straight from the table: decoded and verified with embit.
    decoded = await chain.only_confirmed_can_confirm(database_url, [b.raw_tx_hex for b in confirmed])

    payee = {p.address: p for p in t.players.values()}
    on_chain: dict[str, int] = {}
    for tx in decoded.values():
        for address, amount in tx.outputs:
            if address in payee:
                on_chain[address] = on_chain.get(address, 0) + amount
    owed: dict[str, int] = {}
    for ref in refs:
        allocation = (
            await h.payouts.GetAllocation(po_pb.GetAllocationRequest(round=ref), metadata=md(h.auditor))
        ).allocation
        for line in allocation.lines:
            owed[line.model.model_id] = owed.get(line.model.model_id, 0) + max(line.amount_satoshis, 0)
    for player in t.players.values():
        balance = (
            await h.payouts.GetParticipantBalance(
                po_pb.GetParticipantBalanceRequest(participant_id=player.participant_id),
                metadata=md(h.auditor),
            )
        ).balance
        assert balance.pending_satoshis == 0
        assert on_chain.get(player.address, 0) + balance.payable_satoshis == owed.get(player.model_id, 0), player
        assert balance.payable_satoshis < 294  # only dust may wait
    posted = {}
    token = ""
    while True:
        page = await h.audit.ListEntries(
            au_pb.ListEntriesRequest(kind="pending.post", page_size=500, page_token=token),
            metadata=md(h.auditor),
        )
        for entry in page.entries:
            posted[(entry.metadata["txid"], int(entry.metadata["vout"]))] = -next(
                p.amount_satoshis for p in entry.postings if p.account_code.startswith("platform:wallet:")
            )
        token = page.next_page_token
        if not token:
            break
    for batch in confirmed:
        for output in batch.outputs:
            assert (
                posted.pop((batch.txid, output.vout))
                == output.amount_satoshis
                == decoded[batch.txid].outputs[output.vout][1]
            )
    assert not posted, f"ledger payouts without a confirmed output: {posted}"

    trial = await h.audit.GetTrialBalance(au_pb.GetTrialBalanceRequest(), metadata=md(h.auditor))
    assert trial.balanced and trial.total_debit_satoshis == trial.total_credit_satoshis
    assert (await h.audit.VerifyChain(au_pb.VerifyChainRequest(), metadata=md(h.auditor))).ok
    rec = await h.payouts.Reconcile(po_pb.ReconcileRequest(), metadata=md(h.auditor))
    assert rec.clean, rec.differences
    for ref in refs:
        rnd = (await h.stubs.subs.GetRound(pb.GetRoundRequest(round=ref), metadata=md(h.stubs.operator))).round
        assert rnd.state == pb.Round.STATE_PAID
