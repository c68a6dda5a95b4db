"""The round pipeline an operator (or a scheduler) drives: close, resolve, score, publish, allocate, pay.

Every step is an idempotent RPC with a request id derived from the round and the step, and the
pipeline looks at each service's state before acting, so ``run`` can be repeated after any
failure (a killed service, a killed pipeline) and resumes where the round stands.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from crowdquant.common.v1 import common_pb2
from crowdquant.leaderboard.v1 import leaderboard_service_pb2 as lb_pb
from crowdquant.leaderboard.v1 import leaderboard_service_pb2_grpc as lb_grpc
from crowdquant.payouts.v1 import ledger_audit_service_pb2 as au_pb
from crowdquant.payouts.v1 import ledger_audit_service_pb2_grpc as au_grpc
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.payouts.v1 import payouts_service_pb2_grpc as po_grpc
from crowdquant.scoring.v1 import scoring_service_pb2 as sc_pb
from crowdquant.scoring.v1 import scoring_service_pb2_grpc as sc_grpc
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from crowdquant.submissions.v1 import submissions_service_pb2_grpc as sub_grpc
from shared.errors import Aborted
from shared.rpc.client import CHANNEL_OPTIONS, RETRYABLE

STEPS = ("close", "resolve", "score", "publish", "allocate", "pay")


@dataclass
class Addresses:
    submissions: str = "127.0.0.1:50051"
    scoring: str = "127.0.0.1:50052"
    leaderboard: str = "127.0.0.1:50053"
    payouts: str = "127.0.0.1:50054"

    @classmethod
    def from_env(cls) -> Addresses:
        out = cls()
        for name in ("submissions", "scoring", "leaderboard", "payouts"):
            value = os.environ.get(f"CROWDQUANT_{name.upper()}_ADDR")
            if value:
                setattr(out, name, value)
        return out


@dataclass
class RoundOutcome:
    """What a pipeline run did and what the round looks like after it."""

    ref: common_pb2.RoundRef
    steps_done: list[str] = field(default_factory=list)
    state: str = ""
    run: sc_pb.ScoringRun | None = None
    allocation: po_pb.Allocation | None = None
    batches: list[po_pb.Batch] = field(default_factory=list)


class Pipeline:
    def __init__(
        self,
        addresses: Addresses,
        api_key: str,
        *,
        timeout: float = 600.0,
        retries: int = 8,
        retry_seconds: float = 120.0,
        log: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.key = api_key
        self.timeout = timeout
        self.retries = retries  # scoring runs started again after a failed one
        self.retry_seconds = retry_seconds  # how long a call is retried while its service is down
        self.log = log
        self.channels = {
            name: grpc.insecure_channel(getattr(addresses, name), options=CHANNEL_OPTIONS)
            for name in ("submissions", "scoring", "leaderboard", "payouts")
        }
        self.submissions = sub_grpc.SubmissionsServiceStub(self.channels["submissions"])
        self.scoring = sc_grpc.ScoringServiceStub(self.channels["scoring"])
        self.leaderboard = lb_grpc.LeaderboardServiceStub(self.channels["leaderboard"])
        self.payouts = po_grpc.PayoutsServiceStub(self.channels["payouts"])
        self.audit = au_grpc.LedgerAuditServiceStub(self.channels["payouts"])

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()

    def call(self, fn: Any, request: Any, *, key: str | None = None) -> Any:
        """A unary call with the operator key (or ``key``), retried with the same request id while the
        service is down or restarting, for up to ``retry_seconds``."""
        metadata = (("authorization", f"Bearer {key or self.key}"),)
        give_up = time.monotonic() + self.retry_seconds
        attempt = 0
        while True:
            try:
                return fn(request, metadata=metadata, timeout=self.timeout)
            except grpc.RpcError as exc:
                if exc.code() not in RETRYABLE or time.monotonic() >= give_up:
                    raise
                time.sleep(min(2.0, 0.25 * 2**attempt))
                attempt += 1

    # --- single steps ----------------------------------------------------------------------

    def round(self, ref: common_pb2.RoundRef) -> sub_pb.Round:
        return self.call(self.submissions.GetRound, sub_pb.GetRoundRequest(round=ref)).round

    @staticmethod
    def rid(ref: common_pb2.RoundRef, step: str) -> str:
        return f"pipeline:{ref.tournament_id}:{ref.round_number}:{step}"

    def open(self, tournament_id: str, spec: sub_pb.GeneratedDatasetSpec) -> sub_pb.Round:
        latest = self.call(
            self.submissions.GetTournament, sub_pb.GetTournamentRequest(tournament_id=tournament_id)
        ).tournament.latest_round_number
        number = latest + 1
        return self.call(
            self.submissions.OpenRound,
            sub_pb.OpenRoundRequest(
                request_id=f"pipeline:{tournament_id}:{number}:open",
                tournament_id=tournament_id,
                round_number=number,
                generated=spec,
            ),
        ).round

    def close_round(self, ref: common_pb2.RoundRef) -> sub_pb.Round:
        return self.call(
            self.submissions.CloseRound, sub_pb.CloseRoundRequest(request_id=self.rid(ref, "close"), round=ref)
        ).round

    def resolve(self, ref: common_pb2.RoundRef) -> sub_pb.Round:
        return self.call(
            self.submissions.ResolveRound,
            sub_pb.ResolveRoundRequest(request_id=self.rid(ref, "resolve"), round=ref, use_generated_targets=True),
        ).round

    def stakes(self, ref: common_pb2.RoundRef) -> list[sc_pb.ModelStake]:
        """Payouts' stakes at the round's close, as scoring takes them (none when payouts knows no stakes)."""
        try:
            found = self.call(self.payouts.GetRoundStakes, po_pb.GetRoundStakesRequest(round=ref)).stakes
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return []
        return [sc_pb.ModelStake(model_id=s.model_id, stake_satoshis=s.stake_satoshis) for s in found]

    def score(self, ref: common_pb2.RoundRef) -> sc_pb.ScoringRun:
        """Score the round with payouts' stakes and wait for the run; a failed or cancelled run is followed
        by a fresh one (its request id names the run it replaces, so a resumed pipeline follows the same
        chain)."""
        request_id = self.rid(ref, "score")
        stakes = self.stakes(ref)
        for attempt in range(self.retries + 1):
            request = sc_pb.ScoreRoundRequest(request_id=request_id, round=ref, stakes=stakes)
            run = self.call(self.scoring.ScoreRound, request).run
            while run.state == sc_pb.ScoringRun.STATE_RUNNING:
                time.sleep(0.5)
                run = self.call(self.scoring.GetScoringRun, sc_pb.GetScoringRunRequest(run_id=run.run_id)).run
            if run.state == sc_pb.ScoringRun.STATE_SUCCEEDED:
                return run
            state = sc_pb.ScoringRun.State.Name(run.state).removeprefix("STATE_").lower()
            self.log(f"scoring run {run.run_id} {state}: {run.error_message or 'no reason given'}; scoring again")
            request_id = f"{self.rid(ref, 'score')}:{run.run_id}"
            if attempt < self.retries:
                time.sleep(min(5.0, 0.25 * 2**attempt))
        raise Aborted(
            f"round {ref.round_number} of {ref.tournament_id!r} was not scored after {self.retries + 1} "
            f"runs; the last, {run.run_id}, ended with: {run.error_message or 'no reason given'}. "
            "Fix the cause and run the pipeline again"
        )

    def published(self, ref: common_pb2.RoundRef) -> bool:
        try:
            board = self.call(
                self.leaderboard.GetRoundLeaderboard, lb_pb.GetRoundLeaderboardRequest(round=ref, page_size=1)
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return board.source == lb_pb.SCORE_SOURCE_LIVE

    def publish(self, ref: common_pb2.RoundRef) -> lb_pb.LeaderboardRound:
        return self.call(
            self.leaderboard.PublishRound, lb_pb.PublishRoundRequest(request_id=self.rid(ref, "publish"), round=ref)
        ).round

    def allocate(self, ref: common_pb2.RoundRef) -> po_pb.Allocation:
        return self.call(
            self.payouts.AllocateRound, po_pb.AllocateRoundRequest(request_id=self.rid(ref, "allocate"), round=ref)
        ).allocation

    def existing_allocation(self, ref: common_pb2.RoundRef) -> po_pb.Allocation | None:
        try:
            return self.call(self.payouts.GetAllocation, po_pb.GetAllocationRequest(round=ref)).allocation
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise

    def round_batches(self, ref: common_pb2.RoundRef) -> list[po_pb.Batch]:
        return list(self.call(self.payouts.ListBatches, po_pb.ListBatchesRequest(round=ref, page_size=1000)).batches)

    def pay(self, ref: common_pb2.RoundRef) -> list[po_pb.Batch]:
        """Create the round's batches (once), then confirm each broadcast one (offline test network)."""
        batches = self.round_batches(ref)
        if not any(b.state != po_pb.Batch.STATE_VOIDED for b in batches):
            batches = list(
                self.call(
                    self.payouts.CreateBatch,
                    po_pb.CreateBatchRequest(request_id=self.rid(ref, f"pay:{len(batches)}"), round=ref),
                ).batches
            )
        confirmed = []
        for batch in batches:
            if batch.state in (po_pb.Batch.STATE_SIGNED, po_pb.Batch.STATE_PLANNED):
                self.call(
                    self.payouts.RecoverBatches,
                    po_pb.RecoverBatchesRequest(request_id=f"{self.rid(ref, 'recover')}:{batch.batch_id}"),
                )
                batch = self.call(self.payouts.GetBatch, po_pb.GetBatchRequest(batch_id=batch.batch_id)).batch
            if batch.state == po_pb.Batch.STATE_BROADCAST:
                batch = self.call(
                    self.payouts.ConfirmBatch,
                    po_pb.ConfirmBatchRequest(
                        request_id=f"{self.rid(ref, 'confirm')}:{batch.batch_id}", batch_id=batch.batch_id
                    ),
                ).batch
            confirmed.append(batch)
        return confirmed

    # --- the whole remaining pipeline ------------------------------------------------------

    def run(self, ref: common_pb2.RoundRef, *, until: str = "pay") -> RoundOutcome:
        """Run every remaining step of a round, up to and including ``until``."""
        last = STEPS.index(until)
        current = self.round(ref)
        ref = current.round
        out = RoundOutcome(ref)
        state = current.state
        R = sub_pb.Round
        if state == R.STATE_OPEN and last >= 0:
            self.log("closing")
            state = self.close_round(ref).state
            out.steps_done.append("close")
        if state == R.STATE_CLOSED and last >= 1:
            self.log("resolving")
            state = self.resolve(ref).state
            out.steps_done.append("resolve")
        if state in (R.STATE_RESOLVED, R.STATE_SCORED, R.STATE_PAID) and last >= 2:
            if state == R.STATE_RESOLVED:
                self.log("scoring")
                out.steps_done.append("score")
            out.run = self.score(ref)
        if last >= 3 and self.round(ref).state in (R.STATE_SCORED, R.STATE_PAID):
            if not self.published(ref):
                self.log("publishing")
                out.steps_done.append("publish")
            self.publish(ref)
            if last >= 4:
                out.allocation = self.existing_allocation(ref)
                if out.allocation is None:
                    self.log("allocating")
                    out.allocation = self.allocate(ref)
                    out.steps_done.append("allocate")
            if last >= 5 and self.round(ref).state != R.STATE_PAID:
                self.log("paying")
                out.batches = self.pay(ref)
                out.steps_done.append("pay")
            elif last >= 5:
                out.batches = self.round_batches(ref)
            if last >= 4:
                # publish again so the public board shows the allocated payouts (same board otherwise)
                self.call(
                    self.leaderboard.PublishRound,
                    lb_pb.PublishRoundRequest(request_id=self.rid(ref, "publish:payouts"), round=ref),
                )
        out.state = R.State.Name(self.round(ref).state).removeprefix("STATE_")
        return out

    # --- audit -----------------------------------------------------------------------------

    def trial_balance(self) -> au_pb.GetTrialBalanceResponse:
        return self.call(self.audit.GetTrialBalance, au_pb.GetTrialBalanceRequest())

    def verify_chain(self) -> au_pb.VerifyChainResponse:
        return self.call(self.audit.VerifyChain, au_pb.VerifyChainRequest())

    def reconcile(self) -> po_pb.ReconcileResponse:
        return self.call(self.payouts.Reconcile, po_pb.ReconcileRequest())
