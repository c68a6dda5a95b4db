"""Allocations paid in Bitcoin batches over real gRPC + Postgres, every transaction decoded with embit.

Checks that the chain (embit's reading of the raw bytes) and the ledger agree output by output, that a
crash between signing and broadcasting resumes with the very same transaction, that dust rolls over,
that an address that does not decode is held, and that a fee bump spends the same coins.
"""

from __future__ import annotations

import dataclasses

import grpc
import pytest

from crowdquant.common.v1 import common_pb2
from crowdquant.payouts.v1 import ledger_audit_service_pb2 as au_pb
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from crowdquant.submissions.v1 import submissions_service_pb2 as pb
from services.payouts import faults
from tests.integration.conftest import md
from tests.integration.payouts import chain, scenario

T = "paybatch"
POOL = 2_000_000
KINDS = ("linear", "half", "noise", "copy")
Batch = po_pb.Batch


@pytest.fixture(scope="module")
async def tour(stubs):
    return await scenario.tournament(stubs, T, kinds=KINDS, address_seed=40, tournament_rules=scenario.rules(pool=POOL))


@pytest.fixture
def crash_at():
    """Arm a fault point that raises (an in-process stand-in for SIGKILL); disarmed afterwards."""

    def arm(point: str) -> None:
        def crash() -> None:
            raise faults.InjectedFault(point)

        faults.set_action({point: 1}, crash)

    yield arm
    faults.reset()


async def failure(call) -> grpc.aio.AioRpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


async def allocate(payouts, keys, ref, request_id: str) -> po_pb.Allocation:  # type: ignore[no-untyped-def]
    return (
        await payouts.AllocateRound(
            po_pb.AllocateRoundRequest(request_id=request_id, round=ref), metadata=md(keys.operator)
        )
    ).allocation


async def ledger_entries(audit, keys, kind: str) -> list[au_pb.Entry]:  # type: ignore[no-untyped-def]
    found, token = [], ""
    while True:
        page = await audit.ListEntries(
            au_pb.ListEntriesRequest(kind=kind, page_size=100, page_token=token), metadata=md(keys.auditor)
        )
        found += list(page.entries)
        token = page.next_page_token
        if not token:
            return found


async def check_against_ledger(audit, keys, database_url, batches) -> None:  # type: ignore[no-untyped-def]
    """Decode each batch with embit; compare outputs with the posted reservations, the fee with its entry."""
    prevouts = await chain.wallet_coins(database_url)
    posted = {
        (e.metadata["txid"], int(e.metadata["vout"])): e for e in await ledger_entries(audit, keys, "pending.post")
    }
    fees = {e.metadata["txid"]: e for e in await ledger_entries(audit, keys, "payout.fee")}
    for batch in batches:
        decoded = chain.verify(batch.raw_tx_hex, prevouts)
        assert decoded.txid == batch.txid
        payee_vouts = {o.vout for o in batch.outputs}
        for output in batch.outputs:
            assert decoded.outputs[output.vout] == (output.address, output.amount_satoshis)
            entry = posted[(batch.txid, output.vout)]
            wallet_leg = next(p for p in entry.postings if p.account_code.startswith("platform:wallet:"))
            assert -wallet_leg.amount_satoshis == output.amount_satoshis
        assert sum(a for i, (_, a) in enumerate(decoded.outputs) if i in payee_vouts) == batch.total_output_satoshis
        fee_entry = fees[batch.txid]
        assert (
            next(p.amount_satoshis for p in fee_entry.postings if p.account_code == "platform:fees")
            == decoded.fee
            == batch.fee_satoshis
        )
        assert decoded.fee >= batch.fee_rate_sat_vb * batch.vsize


async def test_round_paid_in_a_batch_that_matches_the_ledger(stubs, payouts, audit, keys, tour, database_url):
    ref = await scenario.scored_round(stubs, tour, seed=11)
    allocation = await allocate(payouts, keys, ref, "alloc-1")
    assert sum(line.amount_satoshis for line in allocation.lines) == POOL == allocation.total_satoshis
    assert (await allocate(payouts, keys, ref, "alloc-1-again")).entry_id == allocation.entry_id
    created = await payouts.CreateBatch(
        po_pb.CreateBatchRequest(request_id="batch-1", confirm=True), metadata=md(keys.operator)
    )
    assert [b.state for b in created.batches] == [Batch.STATE_CONFIRMED]
    paid = {line.model.model_id: line.amount_satoshis for line in allocation.lines if line.amount_satoshis > 0}
    batch = created.batches[0]
    assert {o.model_id: o.amount_satoshis for o in batch.outputs} == paid
    assert all(o.allocation_ids == [allocation.allocation_id] for o in batch.outputs)
    assert [(r.tournament_id, r.round_number) for r in batch.rounds] == [(T, ref.round_number)]
    await check_against_ledger(audit, keys, database_url, created.batches)
    repeat = await payouts.CreateBatch(
        po_pb.CreateBatchRequest(request_id="batch-1", confirm=True), metadata=md(keys.operator)
    )
    assert [b.txid for b in repeat.batches] == [batch.txid]
    nothing = await payouts.CreateBatch(po_pb.CreateBatchRequest(request_id="batch-2"), metadata=md(keys.operator))
    assert not nothing.batches
    rnd = (await stubs.subs.GetRound(pb.GetRoundRequest(round=ref), metadata=md(keys.operator))).round
    assert rnd.state == pb.Round.STATE_PAID
    owner = next(p for p in tour.players.values() if p.model_id == batch.outputs[0].model_id)
    history = await payouts.GetPayouts(po_pb.GetPayoutsRequest(), metadata=md(owner.key))
    assert [(p.txid, p.vout, p.amount_satoshis) for p in history.payouts] == [
        (batch.txid, batch.outputs[0].vout, batch.outputs[0].amount_satoshis)
    ]
    err = await failure(
        payouts.GetPayouts(po_pb.GetPayoutsRequest(participant_id=keys.other_id), metadata=md(owner.key))
    )
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    rec = await payouts.Reconcile(po_pb.ReconcileRequest(), metadata=md(keys.auditor))
    assert rec.clean and rec.outputs_checked == len(batch.outputs), rec.differences
    assert rec.wallet_ledger_satoshis == rec.wallet_utxo_satoshis > 0


async def test_crash_between_signed_and_broadcast_resumes_with_the_same_bytes(
    stubs, payouts, audit, keys, tour, database_url, crash_at
):
    ref = await scenario.scored_round(stubs, tour, seed=12)
    await allocate(payouts, keys, ref, "alloc-2")
    crash_at("batch.signed")
    err = await failure(
        payouts.CreateBatch(po_pb.CreateBatchRequest(request_id="batch-crash"), metadata=md(keys.operator))
    )
    assert err.code() == grpc.StatusCode.INTERNAL
    faults.reset()
    listed = await payouts.ListBatches(po_pb.ListBatchesRequest(state=Batch.STATE_SIGNED), metadata=md(keys.auditor))
    [signed] = listed.batches
    assert signed.txid and signed.raw_tx_hex and not signed.broadcast_time.seconds
    recovered = await payouts.RecoverBatches(
        po_pb.RecoverBatchesRequest(request_id="recover-1"), metadata=md(keys.operator)
    )
    [after] = recovered.batches
    assert after.state == Batch.STATE_BROADCAST
    assert (after.txid, after.raw_tx_hex) == (signed.txid, signed.raw_tx_hex)  # re-broadcast, never rebuilt
    rec = await payouts.Reconcile(po_pb.ReconcileRequest(), metadata=md(keys.operator))
    assert rec.clean, rec.differences  # unconfirmed: the wallet spent it, the ledger still holds it pending
    confirmed = (
        await payouts.ConfirmBatch(
            po_pb.ConfirmBatchRequest(request_id="confirm-1", batch_id=after.batch_id),
            metadata=md(keys.operator),
        )
    ).batch
    assert confirmed.state == Batch.STATE_CONFIRMED and confirmed.txid == signed.txid
    await check_against_ledger(audit, keys, database_url, [confirmed])


async def test_fee_bump_spends_the_same_inputs_and_pays_the_same_outputs(
    stubs, payouts, audit, keys, tour, database_url, crash_at
):
    ref = await scenario.scored_round(stubs, tour, seed=13)
    await allocate(payouts, keys, ref, "alloc-3")
    [stuck] = (
        await payouts.CreateBatch(
            po_pb.CreateBatchRequest(request_id="batch-3", fee_rate_sat_vb=1), metadata=md(keys.operator)
        )
    ).batches
    assert stuck.state == Batch.STATE_BROADCAST and stuck.fee_rate_sat_vb == 1
    err = await failure(
        payouts.BumpBatchFee(
            po_pb.BumpBatchFeeRequest(request_id="bump-low", batch_id=stuck.batch_id, fee_rate_sat_vb=1),
            metadata=md(keys.operator),
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    crash_at("batch.bump_signed")
    request = po_pb.BumpBatchFeeRequest(request_id="bump-1", batch_id=stuck.batch_id, fee_rate_sat_vb=5)
    await failure(payouts.BumpBatchFee(request, metadata=md(keys.operator)))
    faults.reset()
    bumped = (await payouts.BumpBatchFee(request, metadata=md(keys.operator))).batch  # the stored replacement
    assert bumped.replaced_txids == [stuck.txid] and bumped.txid != stuck.txid and bumped.fee_rate_sat_vb == 5
    prevouts = await chain.wallet_coins(database_url)
    old, new = chain.verify(stuck.raw_tx_hex, prevouts), chain.verify(bumped.raw_tx_hex, prevouts)
    assert old.inputs == new.inputs and old.outputs[: len(stuck.outputs)] == new.outputs[: len(bumped.outputs)]
    assert new.fee > old.fee and new.fee == bumped.fee_satoshis
    again = (await payouts.BumpBatchFee(request, metadata=md(keys.operator))).batch
    assert again.txid == bumped.txid and again.replaced_txids == [stuck.txid]
    confirmed = (
        await payouts.ConfirmBatch(
            po_pb.ConfirmBatchRequest(request_id="confirm-3", batch_id=bumped.batch_id),
            metadata=md(keys.operator),
        )
    ).batch
    await check_against_ledger(audit, keys, database_url, [confirmed])
    rec = await payouts.Reconcile(po_pb.ReconcileRequest(), metadata=md(keys.operator))
    assert rec.clean, rec.differences


async def test_void_planned_batch_makes_balances_payable_again(stubs, payouts, keys, tour, crash_at):
    ref = await scenario.scored_round(stubs, tour, seed=14)
    allocation = await allocate(payouts, keys, ref, "alloc-4")
    winner = next(line for line in allocation.lines if line.amount_satoshis > 0)
    crash_at("batch.planned")
    await failure(payouts.CreateBatch(po_pb.CreateBatchRequest(request_id="batch-4"), metadata=md(keys.operator)))
    faults.reset()
    [planned] = (
        await payouts.ListBatches(po_pb.ListBatchesRequest(state=Batch.STATE_PLANNED), metadata=md(keys.operator))
    ).batches
    balance = (
        await payouts.GetParticipantBalance(
            po_pb.GetParticipantBalanceRequest(participant_id=winner.model.participant_id),
            metadata=md(keys.operator),
        )
    ).balance
    assert balance.pending_satoshis > 0 and balance.payable_satoshis == 0
    voided = (
        await payouts.VoidBatch(
            po_pb.VoidBatchRequest(request_id="void-4", batch_id=planned.batch_id, reason="operator test"),
            metadata=md(keys.operator),
        )
    ).batch
    assert voided.state == Batch.STATE_VOIDED and voided.failure_reason == "operator test"
    balance = (
        await payouts.GetParticipantBalance(
            po_pb.GetParticipantBalanceRequest(participant_id=winner.model.participant_id),
            metadata=md(keys.operator),
        )
    ).balance
    assert balance.pending_satoshis == 0 and balance.payable_satoshis > 0
    [paid] = (
        await payouts.CreateBatch(
            po_pb.CreateBatchRequest(request_id="batch-4b", confirm=True), metadata=md(keys.operator)
        )
    ).batches
    assert paid.state == Batch.STATE_CONFIRMED
    err = await failure(
        payouts.VoidBatch(
            po_pb.VoidBatchRequest(request_id="void-late", batch_id=paid.batch_id), metadata=md(keys.operator)
        )
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "CONFIRMED" in err.details()
    rnd = (await stubs.subs.GetRound(pb.GetRoundRequest(round=ref), metadata=md(keys.operator))).round
    assert rnd.state == pb.Round.STATE_PAID


async def test_dust_rolls_over_and_bad_addresses_are_held(stubs, payouts, audit, keys, services, database_url):
    # the 2016 pool (every positive MMC paid), whose small shares this scenario needs to leave dust
    dust_rules = scenario.rules(pool=700, significance=pb.PayoutRules.SIGNIFICANCE_OFF)
    dust_rules.payout.pool.contribution_metric = common_pb2.CONTRIBUTION_METRIC_MMC
    dusty = await scenario.tournament(
        stubs,
        "dusty",
        kinds=("linear", "copy", "half", "noise"),
        address_seed=60,
        tournament_rules=dust_rules,
    )
    first = await scenario.scored_round(stubs, dusty, seed=21)
    small = await allocate(payouts, keys, first, "alloc-dust-1")
    owed = {line.model.model_id: line.amount_satoshis for line in small.lines if line.amount_satoshis > 0}
    created = await payouts.CreateBatch(
        po_pb.CreateBatchRequest(request_id="batch-dust-1", confirm=True), metadata=md(keys.operator)
    )
    paid = {o.model_id: o.amount_satoshis for b in created.batches for o in b.outputs}
    assert paid == {m: a for m, a in owed.items() if a >= 294}
    assert {h.model_id: h.amount_satoshis for h in created.held} == {m: a for m, a in owed.items() if a < 294}
    assert {h.reason for h in created.held} == {"BELOW_DUST"} and all("dust limit" in h.detail for h in created.held)
    rolled = {m: a for m, a in owed.items() if a < 294}
    assert rolled, "the scenario must leave some balance under the dust limit"
    assert (
        await stubs.subs.GetRound(pb.GetRoundRequest(round=first), metadata=md(keys.operator))
    ).round.state == pb.Round.STATE_PAID  # what it owes is paid or dust rolled over

    second = await scenario.scored_round(stubs, dusty, seed=22)
    big = await allocate(payouts, keys, second, "alloc-dust-2")
    owed = dict(rolled)
    for line in big.lines:
        if line.amount_satoshis > 0:
            owed[line.model.model_id] = owed.get(line.model.model_id, 0) + line.amount_satoshis
    peers = services["payouts"].ctx.extras["peers"]
    real_models = peers.models
    victim = max(owed, key=lambda m: owed[m])

    async def models_with_a_foreign_address(tournament_id: str):  # type: ignore[no-untyped-def]
        found = await real_models(tournament_id)
        if victim in found:
            found[victim] = dataclasses.replace(
                found[victim], payout_address="tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
            )
        return found

    peers.models = models_with_a_foreign_address
    try:
        created = await payouts.CreateBatch(
            po_pb.CreateBatchRequest(request_id="batch-dust-2", confirm=True), metadata=md(keys.operator)
        )
    finally:
        peers.models = real_models
    [bad] = [h for h in created.held if h.reason == "INVALID_ADDRESS"]
    assert bad.model_id == victim and bad.amount_satoshis == owed[victim] and "testnet" in bad.detail
    paid = {o.model_id: o for b in created.batches for o in b.outputs}
    assert {m: o.amount_satoshis for m, o in paid.items()} == {
        m: a for m, a in owed.items() if a >= 294 and m != victim
    }
    for model_id in set(rolled) & set(paid):  # round 1's dust is paid with round 2, in the same output
        assert set(paid[model_id].allocation_ids) == {small.allocation_id, big.allocation_id}
    await check_against_ledger(audit, keys, database_url, created.batches)
    assert (
        await stubs.subs.GetRound(pb.GetRoundRequest(round=second), metadata=md(keys.operator))
    ).round.state == pb.Round.STATE_SCORED  # the held payee is still owed
    fixed = await payouts.CreateBatch(
        po_pb.CreateBatchRequest(request_id="batch-dust-3", confirm=True), metadata=md(keys.operator)
    )
    assert [o.model_id for o in fixed.batches[0].outputs] == [victim]
    assert (
        await stubs.subs.GetRound(pb.GetRoundRequest(round=second), metadata=md(keys.operator))
    ).round.state == pb.Round.STATE_PAID
    rec = await payouts.Reconcile(po_pb.ReconcileRequest(), metadata=md(keys.operator))
    assert rec.clean, rec.differences
    trial = await audit.GetTrialBalance(au_pb.GetTrialBalanceRequest(), metadata=md(keys.auditor))
    verify = await audit.VerifyChain(au_pb.VerifyChainRequest(), metadata=md(keys.auditor))
    assert trial.balanced and verify.ok


async def test_batch_requests_are_checked(payouts, keys):
    for request, field in [
        (po_pb.CreateBatchRequest(request_id="bad-1", fee_rate_sat_vb=-1), "fee_rate_sat_vb"),
        (po_pb.CreateBatchRequest(request_id="bad-2", max_outputs=5000), "max_outputs"),
        (po_pb.CreateBatchRequest(request_id="bad-3", round=common_pb2.RoundRef(tournament_id=T)), "round"),
    ]:
        err = await failure(payouts.CreateBatch(request, metadata=md(keys.operator)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and field in err.details()
    err = await failure(payouts.GetBatch(po_pb.GetBatchRequest(batch_id="nope"), metadata=md(keys.operator)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = await failure(
        payouts.GetBatch(
            po_pb.GetBatchRequest(batch_id="00000000-0000-0000-0000-000000000000"), metadata=md(keys.operator)
        )
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
