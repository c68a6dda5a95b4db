"""PayoutsService: balances, stakes, allocations, batches, reconciliation and payout history. Thin adapter.

Mutating calls are idempotent by request id (``shared.idempotency.run_once``, claimed in the same
transaction as the ledger entries they write); batch calls then drive the batch state machine, which
is itself resumable, so a repeat after a crash finishes what the first call started.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from crowdquant.payouts.v1 import payouts_service_pb2 as pb
from crowdquant.payouts.v1 import payouts_service_pb2_grpc as pb_grpc
from services.payouts.api import convert
from services.payouts.bitcoin.wallets import WalletBook
from services.payouts.domain import chart
from services.payouts.domain.batching import MAX_OUTPUTS_PER_TRANSACTION, clamp_fee_rate
from services.payouts.domain.tournaments import ModelInfo
from services.payouts.peers import Peers
from services.payouts.settings import PayoutsSettings
from services.payouts.usecases import allocation as allocation_handlers
from services.payouts.usecases import balances as balance_handlers
from services.payouts.usecases import history, planning, stakes
from services.payouts.usecases.batches import BatchEngine, parse_batch_id
from services.payouts.usecases.settlement import RoundSettler
from shared.auth import Role
from shared.db import Database
from shared.errors import InvalidArgument, PermissionDenied
from shared.idempotency import check_request_id, run_once
from shared.pagination import decode_token, encode_token, page_size
from shared.rpc.context import principal, require_participant

SCHEMA = "payouts"


def own_or_given(participant_id: str, what: str) -> str:
    """A participant acts on itself (empty = itself); others must name the participant."""
    who = principal()
    if who.role is Role.PARTICIPANT:
        if participant_id and participant_id != who.participant_id:
            raise PermissionDenied(f"{what} of another participant are private")
        return who.participant_id
    if not participant_id:
        raise InvalidArgument("participant_id is required", metadata={"field": "participant_id"})
    return chart.require_id(participant_id, "participant_id")


class PayoutsServicer(pb_grpc.PayoutsServiceServicer):
    def __init__(
        self,
        database: Database,
        peers: Peers,
        wallets: WalletBook,
        engine: BatchEngine,
        settler: RoundSettler,
        settings: PayoutsSettings,
    ) -> None:
        self.db = database
        self.peers = peers
        self.wallets = wallets
        self.engine = engine
        self.settler = settler
        self.settings = settings
        self.directory = planning.PayeeDirectory(peers)
        self.stakes = stakes.Stakes(database, peers)

    async def _once(self, conn: Any, rpc: str, request: Any, response_type: type, action: Any) -> Any:
        return await run_once(
            conn,
            schema=SCHEMA,
            subject=principal().subject,
            rpc=rpc,
            request=request,
            response_type=response_type,
            action=action,
        )

    # --- balances and stakes ------------------------------------------------------------------------

    async def RecordDeposit(self, request: pb.RecordDepositRequest, context: Any) -> pb.RecordDepositResponse:
        check_request_id(request.request_id)

        async def once(conn: Any, action: Any) -> pb.RecordDepositResponse:
            async def respond() -> pb.RecordDepositResponse:
                entry_id, balances = await action()
                return pb.RecordDepositResponse(entry_id=entry_id, balance=convert.balance_pb(balances))

            return await self._once(conn, "RecordDeposit", request, pb.RecordDepositResponse, respond)

        return await balance_handlers.deposit(
            self.db,
            self.peers,
            subject=principal().subject,
            request_id=request.request_id,
            participant_id=request.participant_id,
            amount=request.amount_satoshis,
            memo=request.memo,
            once=once,
        )

    async def GetParticipantBalance(self, request: pb.GetParticipantBalanceRequest, context: Any):
        participant_id = own_or_given(request.participant_id, "balances")
        balances = await balance_handlers.participant_balances(self.db, participant_id)
        return pb.GetParticipantBalanceResponse(balance=convert.balance_pb(balances))

    async def _owned_model(self, model_id: str) -> ModelInfo:
        if not model_id:
            raise InvalidArgument("model_id is required", metadata={"field": "model_id"})
        model = await self.peers.model(model_id)
        require_participant(model.participant_id, what=f"model {model_id}")
        return model

    async def SetStake(self, request: pb.SetStakeRequest, context: Any) -> pb.SetStakeResponse:
        check_request_id(request.request_id)
        model = await self._owned_model(request.model_id)  # who may act comes before what the request says

        async def once(conn: Any, action: Any) -> pb.SetStakeResponse:
            async def respond() -> pb.SetStakeResponse:
                return pb.SetStakeResponse(stake=convert.stake_pb(await action()))

            return await self._once(conn, "SetStake", request, pb.SetStakeResponse, respond)

        return await self.stakes.set_stake(
            subject=principal().subject,
            request_id=request.request_id,
            model=model,
            amount=request.amount_satoshis,
            once=once,
        )

    async def GetStake(self, request: pb.GetStakeRequest, context: Any) -> pb.GetStakeResponse:
        model = await self._owned_model(request.model_id)
        return pb.GetStakeResponse(stake=convert.stake_pb(await self.stakes.get(model)))

    async def ListStakes(self, request: pb.ListStakesRequest, context: Any) -> pb.ListStakesResponse:
        participant_id = request.participant_id or None
        if principal().role is Role.PARTICIPANT:
            participant_id = own_or_given(request.participant_id, "stakes")
        elif participant_id:
            chart.require_id(participant_id, "participant_id")
        size = page_size(request.page_size)
        filters = ["stakes", participant_id]
        page = await self.stakes.page(participant_id, decode_token(request.page_token, filters), size)
        token = encode_token(page.last_code, filters) if page.last_code is not None else ""
        return pb.ListStakesResponse(stakes=[convert.stake_pb(v) for v in page.stakes], next_page_token=token)

    async def GetRoundStakes(self, request: pb.GetRoundStakesRequest, context: Any) -> pb.GetRoundStakesResponse:
        ref = convert.round_ref(request.round)
        allocation_handlers.require_ref(ref)
        found = await self.stakes.round_stakes(ref)
        return pb.GetRoundStakesResponse(
            round=request.round,
            total_stake_satoshis=sum(amount for _, _, amount in found),
            stakes=[pb.RoundStake(model_id=m, participant_id=p, stake_satoshis=a) for m, p, a in found],
        )

    # --- allocation -------------------------------------------------------------------------------

    async def AllocateRound(self, request: pb.AllocateRoundRequest, context: Any) -> pb.AllocateRoundResponse:
        check_request_id(request.request_id)
        view = await allocation_handlers.allocate_round(
            self.db, self.peers, convert.round_ref(request.round), convert.policy_choice(request.policy)
        )
        await self.settler.settle([view.row])
        return pb.AllocateRoundResponse(allocation=convert.allocation_pb(view))

    async def GetAllocation(self, request: pb.GetAllocationRequest, context: Any) -> pb.GetAllocationResponse:
        view = await allocation_handlers.get_allocation(
            self.db, self.peers, convert.round_ref(request.round), convert.policy_choice(request.policy)
        )
        who = principal()
        only = who.participant_id if who.role is Role.PARTICIPANT else None
        return pb.GetAllocationResponse(allocation=convert.allocation_pb(view, only))

    # --- batches ----------------------------------------------------------------------------------

    def _options(self, request: pb.CreateBatchRequest) -> planning.BatchOptions:
        if request.fee_rate_sat_vb < 0:
            raise InvalidArgument(
                "fee_rate_sat_vb must not be negative (0 = the configured default)",
                metadata={"field": "fee_rate_sat_vb"},
            )
        if not 0 <= request.max_outputs <= MAX_OUTPUTS_PER_TRANSACTION:
            raise InvalidArgument(
                f"max_outputs must be 0 (default) to {MAX_OUTPUTS_PER_TRANSACTION}",
                metadata={"field": "max_outputs"},
            )
        rate = clamp_fee_rate(
            request.fee_rate_sat_vb or self.settings.fee_rate_sat_vb, self.settings.fee_rate_ceiling_sat_vb
        )
        round_ref = convert.round_ref(request.round) if request.HasField("round") else None
        if round_ref is not None:
            allocation_handlers.require_ref(round_ref)
        return planning.BatchOptions(
            rate, request.max_outputs or self.settings.max_outputs_per_batch, request.confirm, round_ref
        )

    async def _batches(self, batch_ids: list[uuid.UUID]) -> list[pb.Batch]:
        return [convert.batch_pb(v) for v in await history.batch_views(self.db, batch_ids)]

    async def CreateBatch(self, request: pb.CreateBatchRequest, context: Any) -> pb.CreateBatchResponse:
        check_request_id(request.request_id)
        options = self._options(request)

        async def once(conn: Any, action: Any) -> pb.CreateBatchResponse:
            async def respond() -> pb.CreateBatchResponse:
                plan = await action()
                return pb.CreateBatchResponse(
                    batches=[pb.Batch(batch_id=str(b)) for b in plan.batch_ids],
                    held=[convert.held_pb(h) for h in plan.held],
                )

            return await self._once(conn, "CreateBatch", request, pb.CreateBatchResponse, respond)

        stored = await planning.create_batches(
            self.db,
            self.directory,
            subject=principal().subject,
            request_id=request.request_id,
            options=options,
            once=once,
        )
        batch_ids = [uuid.UUID(b.batch_id) for b in stored.batches]
        for batch_id in batch_ids:
            await self.engine.advance(batch_id)
        return pb.CreateBatchResponse(batches=await self._batches(batch_ids), held=stored.held)

    async def GetBatch(self, request: pb.GetBatchRequest, context: Any) -> pb.GetBatchResponse:
        return pb.GetBatchResponse(batch=(await self._batches([parse_batch_id(request.batch_id)]))[0])

    async def ListBatches(self, request: pb.ListBatchesRequest, context: Any) -> pb.ListBatchesResponse:
        state = None
        if request.state:
            if request.state not in convert.BATCH_STATE_NAMES:
                raise InvalidArgument("state: unknown batch state", metadata={"field": "state"})
            state = convert.BATCH_STATE_NAMES[request.state]
        tournament_id = round_number = None
        if request.HasField("round"):
            allocation_handlers.require_ref(convert.round_ref(request.round))
            tournament_id, round_number = request.round.tournament_id, request.round.round_number
        views, token = await history.list_batches(
            self.db,
            state=state,
            tournament_id=tournament_id,
            round_number=round_number,
            size=request.page_size,
            token=request.page_token,
        )
        return pb.ListBatchesResponse(batches=[convert.batch_pb(v) for v in views], next_page_token=token)

    async def RecoverBatches(self, request: pb.RecoverBatchesRequest, context: Any) -> pb.RecoverBatchesResponse:
        check_request_id(request.request_id)
        recovered = await self.engine.recover()
        return pb.RecoverBatchesResponse(batches=await self._batches(recovered))

    async def BumpBatchFee(self, request: pb.BumpBatchFeeRequest, context: Any) -> pb.BumpBatchFeeResponse:
        check_request_id(request.request_id)
        batch_id = parse_batch_id(request.batch_id)
        if request.fee_rate_sat_vb < 1:
            raise InvalidArgument("fee_rate_sat_vb must be at least 1", metadata={"field": "fee_rate_sat_vb"})
        rate = clamp_fee_rate(request.fee_rate_sat_vb, self.settings.fee_rate_ceiling_sat_vb)

        async def claim(conn: Any) -> bool:
            fresh: list[bool] = []

            async def action() -> pb.BumpBatchFeeResponse:
                fresh.append(True)
                return pb.BumpBatchFeeResponse()

            await self._once(conn, "BumpBatchFee", request, pb.BumpBatchFeeResponse, action)
            return bool(fresh)

        await self.engine.bump_fee(batch_id, rate, claim)
        return pb.BumpBatchFeeResponse(batch=(await self._batches([batch_id]))[0])

    async def ConfirmBatch(self, request: pb.ConfirmBatchRequest, context: Any) -> pb.ConfirmBatchResponse:
        check_request_id(request.request_id)
        batch_id = parse_batch_id(request.batch_id)
        await self.engine.request_confirmation(batch_id)
        return pb.ConfirmBatchResponse(batch=(await self._batches([batch_id]))[0])

    async def VoidBatch(self, request: pb.VoidBatchRequest, context: Any) -> pb.VoidBatchResponse:
        check_request_id(request.request_id)
        batch_id = parse_batch_id(request.batch_id)
        if len(request.reason) > 500:
            raise InvalidArgument("reason is longer than 500 characters", metadata={"field": "reason"})
        await self.engine.void(batch_id, request.reason)
        return pb.VoidBatchResponse(batch=(await self._batches([batch_id]))[0])

    async def Reconcile(self, request: pb.ReconcileRequest, context: Any) -> pb.ReconcileResponse:
        return convert.reconcile_pb(await self.engine.reconcile(), datetime.now(UTC))

    async def GetPayouts(self, request: pb.GetPayoutsRequest, context: Any) -> pb.GetPayoutsResponse:
        participant_id = own_or_given(request.participant_id, "payouts")
        rows, token = await history.payouts(self.db, participant_id, request.page_size, request.page_token)
        return pb.GetPayoutsResponse(
            payouts=[convert.payout_pb(row, rounds) for row, rounds in rows], next_page_token=token
        )
