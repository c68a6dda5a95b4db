"""Payouts records as proto messages, and request values as the use cases take them."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from crowdquant.common.v1 import common_pb2
from crowdquant.payouts.v1 import payouts_service_pb2 as pb
from crowdquant.submissions.v1 import submissions_service_pb2 as sub_pb
from services.payouts.peers import NETWORK_ENUMS, POLICY_ENUMS, round_ref_pb
from services.payouts.peers import policy_choice as policy_choice  # request values, as the use cases take them
from services.payouts.peers import round_ref as round_ref
from services.payouts.usecases.allocation import AllocationView, ReasonDetail, fraction_value
from services.payouts.usecases.balances import Balances
from services.payouts.usecases.history import BatchView
from services.payouts.usecases.planning import HeldPayout
from services.payouts.usecases.reconcile import Report
from services.payouts.usecases.stakes import StakeView
from shared.rpc.convert import timestamp

BATCH_STATES = {
    name: pb.Batch.State.Value(f"STATE_{name}")
    for name in ("PLANNED", "SIGNED", "BROADCAST", "CONFIRMED", "FAILED", "VOIDED")
}
BATCH_STATE_NAMES = {value: name for name, value in BATCH_STATES.items()}
RECONCILE_KINDS = {
    name: pb.ReconciliationDifference.Kind.Value(f"KIND_{name}")
    for name in (
        "MISSING_OUTPUT",
        "UNEXPECTED_OUTPUT",
        "AMOUNT_MISMATCH",
        "ADDRESS_MISMATCH",
        "WALLET_BALANCE_MISMATCH",
    )
}


def ref(tournament_id: str, round_number: int) -> common_pb2.RoundRef:
    return common_pb2.RoundRef(tournament_id=tournament_id, round_number=round_number)


def balance_pb(b: Balances) -> pb.ParticipantBalance:
    return pb.ParticipantBalance(
        participant_id=b.participant_id,
        available_satoshis=b.available,
        staked_satoshis=b.staked,
        payable_satoshis=b.payable,
        pending_satoshis=b.pending,
    )


def stake_pb(s: StakeView) -> pb.Stake:
    return pb.Stake(
        name=f"models/{s.model_id}/stake",
        model_id=s.model_id,
        participant_id=s.participant_id,
        amount_satoshis=s.amount,
        locked=bool(s.locking_rounds),
        locking_rounds=[round_ref_pb(r) for r in s.locking_rounds],
        update_time=timestamp(s.update_time),
    )


def _double(value: float | None) -> float:
    return math.nan if value is None else float(value)


def zero_payout_pb(line: Any, carried: ReasonDetail | None) -> common_pb2.PayoutReason | None:
    """The stored reason of a line paying nothing, or the read-time one of a balance carried over."""
    if carried is not None:
        return common_pb2.PayoutReason(
            code=common_pb2.ZeroPayoutReason.Value(f"ZERO_PAYOUT_REASON_{carried.code.value}"),
            detail=carried.detail,
            value=carried.value or 0.0,
            threshold=carried.threshold or 0.0,
        )
    if not line.reason_code:
        return None
    return common_pb2.PayoutReason(
        code=common_pb2.ZeroPayoutReason.Value(f"ZERO_PAYOUT_REASON_{line.reason_code}"),
        detail=line.reason,
        value=_double(line.reason_value) if line.reason_value is not None else 0.0,
        threshold=line.reason_threshold or 0.0,
        other_submission=line.reason_subject,
    )


def allocation_pb(view: AllocationView, participant_id: str | None = None) -> pb.Allocation:
    row = view.row
    lines = [line for line in view.lines if participant_id is None or line.participant_id == participant_id]
    message = pb.Allocation(
        name=f"tournaments/{row.tournament_id}/rounds/{row.round_number}/allocations/{row.allocation_id}",
        allocation_id=str(row.allocation_id),
        round=ref(row.tournament_id, row.round_number),
        policy=POLICY_ENUMS[row.policy],
        payout_factor=fraction_value(row.payout_factor),
        total_satoshis=int(row.total),
        entry_id=str(row.entry_id) if row.entry_id else "",
        create_time=timestamp(row.created_at),
        lines=[
            pb.AllocationLine(
                model=common_pb2.ModelRef(
                    model_id=line.model_id, participant_id=line.participant_id, display_name=line.display_name
                ),
                contribution=_double(line.contribution),
                amount_satoshis=int(line.amount),
                stake_satoshis=int(line.stake),
                eligible=line.eligible,
                ineligible_reason="" if line.eligible else line.reason,
                zero_payout=zero_payout_pb(line, view.carried.get(line.model_id)),
            )
            for line in lines
        ],
    )
    rules = sub_pb.PayoutRules.FromString(bytes(row.parameters))
    if row.policy == "pool":
        message.pool.CopyFrom(rules.pool)
    else:
        message.stake.CopyFrom(rules.stake)
    return message


def batch_pb(view: BatchView) -> pb.Batch:
    row = view.row
    outputs = [
        pb.BatchOutput(
            address=o.address,
            amount_satoshis=int(o.amount),
            vout=o.vout if o.vout is not None else 0,
            participant_id=o.participant_id,
            model_id=o.model_id,
            allocation_ids=view.allocations.get(o.model_id, []),
            output_type=o.output_type,
        )
        for o in view.outputs
    ]
    return pb.Batch(
        name=f"batches/{row.batch_id}",
        batch_id=str(row.batch_id),
        state=BATCH_STATES[row.state],
        network=NETWORK_ENUMS.get(row.network, common_pb2.BITCOIN_NETWORK_UNSPECIFIED),
        rounds=[ref(t, n) for t, n in view.rounds],
        txid=row.txid or "",
        replaced_txids=view.replaced_txids,
        raw_tx_hex=row.raw_tx_hex or "",
        outputs=outputs,
        total_output_satoshis=int(row.total_output),
        fee_satoshis=int(row.fee or 0),
        fee_rate_sat_vb=int(row.fee_rate),
        vsize=int(row.vsize or 0),
        change_satoshis=int(row.change or 0),
        failure_reason=row.failure_reason,
        create_time=timestamp(row.created_at),
        sign_time=timestamp(row.signed_at),
        broadcast_time=timestamp(row.broadcast_at),
        confirm_time=timestamp(row.confirmed_at),
    )


def held_pb(h: HeldPayout) -> pb.HeldBalance:
    return pb.HeldBalance(
        participant_id=h.participant_id,
        model_id=h.model_id,
        address=h.address,
        amount_satoshis=h.amount,
        reason=h.reason,
        detail=h.detail,
    )


def payout_pb(row: Any, rounds: list[tuple[str, int]]) -> pb.Payout:
    return pb.Payout(
        participant_id=row.participant_id,
        model_id=row.model_id,
        batch_id=str(row.batch_id),
        batch_state=BATCH_STATES[row.state],
        txid=row.txid or "",
        vout=row.vout if row.vout is not None else 0,
        address=row.address,
        amount_satoshis=int(row.amount),
        rounds=[ref(t, n) for t, n in rounds],
        broadcast_time=timestamp(row.broadcast_at),
        confirm_time=timestamp(row.confirmed_at),
    )


def reconcile_pb(report: Report, checked_at: datetime) -> pb.ReconcileResponse:
    return pb.ReconcileResponse(
        clean=report.clean,
        outputs_checked=report.outputs_checked,
        wallet_ledger_satoshis=report.wallet_ledger,
        wallet_utxo_satoshis=report.wallet_utxos,
        check_time=timestamp(checked_at),
        differences=[
            pb.ReconciliationDifference(
                kind=RECONCILE_KINDS[d.kind],
                batch_id=d.batch_id,
                txid=d.txid,
                vout=max(d.vout, 0),
                participant_id=d.participant_id,
                address=d.address,
                ledger_amount_satoshis=d.ledger_amount,
                chain_amount_satoshis=d.chain_amount,
                description=d.description,
            )
            for d in report.differences
        ],
    )
