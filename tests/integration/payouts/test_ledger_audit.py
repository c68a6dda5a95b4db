"""The LedgerAudit service over real gRPC: read-only for auditors, paginated, as-of queries, CSV export,
payout traces; and every write of the payouts service refused to an auditor."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import stat
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from crowdquant.common.v1 import common_pb2
from crowdquant.payouts.v1 import ledger_audit_service_pb2 as au_pb
from crowdquant.payouts.v1 import payouts_service_pb2 as po_pb
from tests.integration.conftest import md
from tests.integration.payouts import scenario

T = "audited"


@pytest.fixture(scope="module")
async def paid(stubs, keys):
    t = await scenario.tournament(
        stubs,
        T,
        kinds=("linear", "half", "noise"),
        address_seed=80,
        tournament_rules=scenario.rules(pool=3_000_000),
    )
    for kind in ("linear", "noise"):
        player = t.players[kind]
        await stubs.payouts.RecordDeposit(
            po_pb.RecordDepositRequest(
                request_id=f"dep-{kind}",
                participant_id=player.participant_id,
                amount_satoshis=50_000,
                memo="funding",
            ),
            metadata=md(keys.operator),
        )
    before_round = datetime.now(UTC)
    await asyncio.sleep(0.01)
    ref = await scenario.scored_round(stubs, t, seed=31)
    allocation = (
        await stubs.payouts.AllocateRound(
            po_pb.AllocateRoundRequest(request_id="a-1", round=ref), metadata=md(keys.operator)
        )
    ).allocation
    batches = (
        await stubs.payouts.CreateBatch(
            po_pb.CreateBatchRequest(request_id="b-1", confirm=True), metadata=md(keys.operator)
        )
    ).batches
    return t, ref, allocation, batches, before_round


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


async def denied(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code()


async def test_accounts_paginate_without_skips_or_repeats(audit, keys, paid):
    seen, token = [], ""
    while True:
        page = await audit.ListAccounts(
            au_pb.ListAccountsRequest(page_size=3, page_token=token), metadata=md(keys.auditor)
        )
        seen += [a.code for a in page.accounts]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert {
        "platform:rewards",
        "platform:fees",
        "platform:wallet:bitcoinlib_test",
        "platform:deposits",
    } <= set(seen)
    t = paid[0]
    linear = t.players["linear"]
    owned = await audit.ListAccounts(
        au_pb.ListAccountsRequest(owner=f"participants/{linear.participant_id}"), metadata=md(keys.operator)
    )
    assert {a.code for a in owned.accounts} == {
        f"participant:{linear.participant_id}:{kind}"
        for kind in (
            "available",
            f"payable:{linear.model_id}",
            f"pending:{linear.model_id}",
            f"staked:{linear.model_id}",
        )
    }
    liabilities = await audit.ListAccounts(
        au_pb.ListAccountsRequest(type=au_pb.ACCOUNT_TYPE_LIABILITY), metadata=md(keys.auditor)
    )
    assert all(a.type == au_pb.ACCOUNT_TYPE_LIABILITY and a.non_positive for a in liabilities.accounts)
    assert (
        await denied(audit.ListAccounts(au_pb.ListAccountsRequest(page_size=-1), metadata=md(keys.auditor)))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_balances_as_of_and_trial_balance(audit, keys, paid):
    t, _, allocation, batches, before_round = paid
    linear = t.players["linear"]
    code = f"participant:{linear.participant_id}:available"
    now = await audit.GetBalance(au_pb.GetBalanceRequest(account_code=code), metadata=md(keys.auditor))
    assert now.balance_satoshis == -50_000 and now.posting_count == 1
    early = await audit.GetBalance(
        au_pb.GetBalanceRequest(
            account_code=code,
            as_of=ts(datetime(2020, 1, 1, tzinfo=UTC)),
            time_basis=au_pb.TIME_BASIS_RECORDED,
        ),
        metadata=md(keys.auditor),
    )
    assert early.balance_satoshis == 0 and early.posting_count == 0
    rewards_then = await audit.GetBalance(
        au_pb.GetBalanceRequest(account_code="platform:rewards", as_of=ts(before_round)),
        metadata=md(keys.auditor),
    )
    rewards_now = await audit.GetBalance(
        au_pb.GetBalanceRequest(account_code="platform:rewards"), metadata=md(keys.auditor)
    )
    assert rewards_then.balance_satoshis == 0 and rewards_now.balance_satoshis == allocation.total_satoshis
    trial = await audit.GetTrialBalance(au_pb.GetTrialBalanceRequest(), metadata=md(keys.auditor))
    assert trial.balanced and trial.total_debit_satoshis == trial.total_credit_satoshis > 0
    assert sum(line.balance_satoshis for line in trial.lines) == 0
    fees = next(line for line in trial.lines if line.account_code == "platform:fees")
    assert fees.balance_satoshis == sum(b.fee_satoshis for b in batches)
    then = await audit.GetTrialBalance(au_pb.GetTrialBalanceRequest(as_of=ts(before_round)), metadata=md(keys.auditor))
    assert then.balanced and then.total_debit_satoshis == 100_000  # only the two deposits
    assert (
        await denied(
            audit.GetBalance(au_pb.GetBalanceRequest(account_code="platform:nothing"), metadata=md(keys.auditor))
        )
        == grpc.StatusCode.NOT_FOUND
    )


async def test_entries_pages_filters_chain_and_export(audit, keys, paid):
    entries, token = [], ""
    while True:
        page = await audit.ListEntries(
            au_pb.ListEntriesRequest(page_size=4, page_token=token), metadata=md(keys.auditor)
        )
        entries += list(page.entries)
        token = page.next_page_token
        if not token:
            break
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    assert all(e.previous_hash == prev.hash for prev, e in itertools.pairwise(entries))
    assert all(sum(p.amount_satoshis for p in e.postings) == 0 for e in entries)
    kinds = {e.kind for e in entries}
    assert {
        "deposit",
        "allocation",
        "pending.reserve",
        "pending.post",
        "payout.fee",
        "wallet.funding",
    } <= kinds
    deposits = await audit.ListEntries(au_pb.ListEntriesRequest(kind="deposit"), metadata=md(keys.auditor))
    assert len(deposits.entries) == 2 and all(e.memo == "funding" for e in deposits.entries)
    one = await audit.GetEntry(au_pb.GetEntryRequest(entry_id=entries[0].entry_id), metadata=md(keys.auditor))
    assert one.entry == entries[0]
    head = await audit.GetChainHead(au_pb.GetChainHeadRequest(), metadata=md(keys.auditor))
    assert (head.entry_id, head.sequence, head.hash) == (
        entries[-1].entry_id,
        entries[-1].sequence,
        entries[-1].hash,
    )
    verify = await audit.VerifyChain(au_pb.VerifyChainRequest(), metadata=md(keys.auditor))
    assert verify.ok and verify.entries_checked == len(entries)
    text = ""
    async for chunk in audit.ExportEntries(au_pb.ExportEntriesRequest(), metadata=md(keys.auditor)):
        text += chunk.csv_text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == sum(len(e.postings) for e in entries)
    assert sum(int(r["amount_satoshis"]) for r in rows) == 0
    assert (
        await denied(audit.ListEntries(au_pb.ListEntriesRequest(page_token="garbage"), metadata=md(keys.auditor)))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_statement_and_trace(audit, keys, paid):
    t, ref, allocation, batches, _ = paid
    linear = t.players["linear"]
    statement = await audit.GetStatement(
        au_pb.GetStatementRequest(participant_id=linear.participant_id), metadata=md(keys.auditor)
    )
    by_code = {a.account_code: a for a in statement.accounts}
    available = by_code[f"participant:{linear.participant_id}:available"]
    assert available.opening_balance_satoshis == 0 and available.closing_balance_satoshis == -50_000
    payable = by_code[f"participant:{linear.participant_id}:payable:{linear.model_id}"]
    line = next(x for x in allocation.lines if x.model.model_id == linear.model_id)
    assert [x.kind for x in payable.lines][:1] == ["allocation"] and payable.closing_balance_satoshis == 0
    assert payable.lines[0].amount_satoshis == -line.amount_satoshis
    traces = await audit.TracePayout(
        au_pb.TracePayoutRequest(participant_id=linear.participant_id, round=ref), metadata=md(keys.auditor)
    )
    [trace] = traces.traces
    output = next(o for b in batches for o in b.outputs if o.model_id == linear.model_id)
    batch = next(b for b in batches if output in b.outputs)
    assert (trace.allocation_id, trace.allocation_entry_id, trace.allocated_satoshis) == (
        allocation.allocation_id,
        allocation.entry_id,
        line.amount_satoshis,
    )
    assert (trace.batch_id, trace.txid, trace.vout, trace.address, trace.output_satoshis) == (
        batch.batch_id,
        batch.txid,
        output.vout,
        output.address,
        output.amount_satoshis,
    )
    assert trace.batch_state == po_pb.Batch.STATE_CONFIRMED


async def test_auditor_only_reads(payouts, audit, keys, paid):
    t, ref, _, batches, _ = paid
    batch_id = batches[0].batch_id
    model_id = t.players["linear"].model_id
    writes = [
        payouts.RecordDeposit(
            po_pb.RecordDepositRequest(request_id="w1", participant_id=keys.participant_id, amount_satoshis=1),
            metadata=md(keys.auditor),
        ),
        payouts.SetStake(
            po_pb.SetStakeRequest(request_id="w2", model_id=model_id, amount_satoshis=1),
            metadata=md(keys.auditor),
        ),
        payouts.AllocateRound(po_pb.AllocateRoundRequest(request_id="w3", round=ref), metadata=md(keys.auditor)),
        payouts.CreateBatch(po_pb.CreateBatchRequest(request_id="w4"), metadata=md(keys.auditor)),
        payouts.RecoverBatches(po_pb.RecoverBatchesRequest(request_id="w5"), metadata=md(keys.auditor)),
        payouts.BumpBatchFee(
            po_pb.BumpBatchFeeRequest(request_id="w6", batch_id=batch_id, fee_rate_sat_vb=9),
            metadata=md(keys.auditor),
        ),
        payouts.ConfirmBatch(po_pb.ConfirmBatchRequest(request_id="w7", batch_id=batch_id), metadata=md(keys.auditor)),
        payouts.VoidBatch(po_pb.VoidBatchRequest(request_id="w8", batch_id=batch_id), metadata=md(keys.auditor)),
    ]
    for call in writes:
        assert await denied(call) == grpc.StatusCode.PERMISSION_DENIED
    reads = await payouts.ListBatches(po_pb.ListBatchesRequest(round=ref), metadata=md(keys.auditor))
    assert [b.batch_id for b in reads.batches] == [b.batch_id for b in batches]
    assert (await payouts.Reconcile(po_pb.ReconcileRequest(), metadata=md(keys.auditor))).clean
    assert (
        await denied(audit.GetTrialBalance(au_pb.GetTrialBalanceRequest(), metadata=md(keys.participant)))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    assert await denied(audit.GetTrialBalance(au_pb.GetTrialBalanceRequest())) == grpc.StatusCode.UNAUTHENTICATED
    allocation = await payouts.GetAllocation(
        po_pb.GetAllocationRequest(round=ref), metadata=md(keys.services["leaderboard"])
    )
    assert allocation.allocation.policy == common_pb2.PAYOUT_POLICY_POOL
    mine = await payouts.GetAllocation(po_pb.GetAllocationRequest(round=ref), metadata=md(t.players["noise"].key))
    assert {line.model.participant_id for line in mine.allocation.lines} == {t.players["noise"].participant_id}


async def test_generated_wallet_seed_is_private(services):
    seed = services["payouts"].ctx.settings.data_dir / "payouts" / "wallet-seed"
    assert stat.S_IMODE(seed.stat().st_mode) == 0o600
    assert len(seed.read_text().split()) == 24
