"""LedgerAuditService: the auditors' read-only view of the ledger; a thin adapter over ``payouts.ledger``.

Reads run in a transaction of their own (the ledger reads through the caller's transaction; the CSV
export streams through a server-side cursor, which needs one). Nothing here writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from crowdquant.payouts.v1 import ledger_audit_service_pb2 as pb
from crowdquant.payouts.v1 import ledger_audit_service_pb2_grpc as pb_grpc
from services.payouts import ledger
from services.payouts.api import convert
from services.payouts.domain import chart
from services.payouts.ledger.records import Account, Entry, TrialBalance
from services.payouts.usecases import history
from services.payouts.usecases.audit import LedgerAudit
from shared.db import Database
from shared.errors import InvalidArgument
from shared.rpc.convert import from_timestamp, timestamp

ACCOUNT_TYPES = {
    ledger.AccountType.ASSET: pb.ACCOUNT_TYPE_ASSET,
    ledger.AccountType.LIABILITY: pb.ACCOUNT_TYPE_LIABILITY,
    ledger.AccountType.EQUITY: pb.ACCOUNT_TYPE_EQUITY,
    ledger.AccountType.INCOME: pb.ACCOUNT_TYPE_INCOME,
    ledger.AccountType.EXPENSE: pb.ACCOUNT_TYPE_EXPENSE,
}
ACCOUNT_TYPE_NAMES = {value: name for name, value in ACCOUNT_TYPES.items()}
BASES = {
    pb.TIME_BASIS_UNSPECIFIED: ledger.TimeBasis.EFFECTIVE,
    pb.TIME_BASIS_EFFECTIVE: ledger.TimeBasis.EFFECTIVE,
    pb.TIME_BASIS_RECORDED: ledger.TimeBasis.RECORDED,
}
BASIS_PB = {
    ledger.TimeBasis.EFFECTIVE: pb.TIME_BASIS_EFFECTIVE,
    ledger.TimeBasis.RECORDED: pb.TIME_BASIS_RECORDED,
}


def basis(value: int) -> ledger.TimeBasis:
    if value not in BASES:
        raise InvalidArgument("time_basis: unknown value", metadata={"field": "time_basis"})
    return BASES[value]


def when(message: Any, field: str) -> datetime | None:
    return from_timestamp(getattr(message, field), field) if message.HasField(field) else None


def account_pb(a: Account) -> pb.Account:
    return pb.Account(
        name=f"accounts/{a.code}",
        code=a.code,
        type=ACCOUNT_TYPES[a.type],
        non_negative=a.non_negative,
        non_positive=a.non_positive,
        owner=a.owner,
        metadata=a.metadata,
        balance_satoshis=a.balance,
        create_time=timestamp(a.created_at),
    )


def entry_pb(e: Entry) -> pb.Entry:
    return pb.Entry(
        name=f"entries/{e.entry_id}",
        entry_id=str(e.entry_id),
        sequence=e.sequence or 0,
        kind=e.kind,
        memo=e.memo,
        metadata=e.metadata,
        effective_time=timestamp(e.effective_at),
        record_time=timestamp(e.recorded_at),
        postings=[pb.Posting(account_code=p.account_code, amount_satoshis=p.amount) for p in e.postings],
        pending=e.pending,
        settles_entry_id=str(e.settles_entry_id or ""),
        reverses_entry_id=str(e.reverses_entry_id or ""),
        previous_hash=e.previous_hash,
        hash=e.hash,
    )


def trial_balance_pb(t: TrialBalance) -> pb.GetTrialBalanceResponse:
    return pb.GetTrialBalanceResponse(
        as_of=timestamp(t.as_of),
        time_basis=BASIS_PB[t.basis],
        total_debit_satoshis=t.total_debit,
        total_credit_satoshis=t.total_credit,
        balanced=t.balanced,
        lines=[
            pb.TrialBalanceLine(
                account_code=line.account_code,
                type=ACCOUNT_TYPES[line.type],
                debit_satoshis=line.debit,
                credit_satoshis=line.credit,
                balance_satoshis=line.balance,
            )
            for line in t.lines
        ],
    )


def _filter(request: Any) -> ledger.EntryFilter:
    return ledger.EntryFilter(
        account_code=request.account_code,
        kind=request.kind,
        start=when(request, "start_time"),
        end=when(request, "end_time"),
        basis=basis(request.time_basis),
    )


class LedgerAuditServicer(pb_grpc.LedgerAuditServiceServicer):
    def __init__(self, database: Database) -> None:
        self.db = database
        self.audit = LedgerAudit(database)

    async def ListAccounts(self, request: pb.ListAccountsRequest, context: Any) -> pb.ListAccountsResponse:
        if request.type and request.type not in ACCOUNT_TYPE_NAMES:
            raise InvalidArgument("type: unknown account type", metadata={"field": "type"})
        page = await self.audit.accounts(
            account_type=ACCOUNT_TYPE_NAMES.get(request.type),
            owner=request.owner,
            code_prefix=request.code_prefix,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListAccountsResponse(
            accounts=[account_pb(a) for a in page.items], next_page_token=page.next_page_token
        )

    async def GetBalance(self, request: pb.GetBalanceRequest, context: Any) -> pb.GetBalanceResponse:
        b = await self.audit.balance(
            request.account_code, as_of=when(request, "as_of"), basis=basis(request.time_basis)
        )
        return pb.GetBalanceResponse(
            account_code=b.account_code,
            as_of=timestamp(b.as_of),
            time_basis=BASIS_PB[b.basis],
            balance_satoshis=b.balance,
            pending_satoshis=b.pending,
            posting_count=b.posting_count,
        )

    async def ListEntries(self, request: pb.ListEntriesRequest, context: Any) -> pb.ListEntriesResponse:
        page = await self.audit.entries(_filter(request), page_size=request.page_size, page_token=request.page_token)
        return pb.ListEntriesResponse(entries=[entry_pb(e) for e in page.items], next_page_token=page.next_page_token)

    async def GetEntry(self, request: pb.GetEntryRequest, context: Any) -> pb.GetEntryResponse:
        return pb.GetEntryResponse(entry=entry_pb(await self.audit.entry(request.entry_id)))

    async def GetTrialBalance(self, request: pb.GetTrialBalanceRequest, context: Any) -> pb.GetTrialBalanceResponse:
        result = await self.audit.trial_balance(as_of=when(request, "as_of"), basis=basis(request.time_basis))
        return trial_balance_pb(result)

    async def VerifyChain(self, request: pb.VerifyChainRequest, context: Any) -> pb.VerifyChainResponse:
        report = await self.audit.verify_chain()
        return pb.VerifyChainResponse(
            ok=report.ok,
            entries_checked=report.entries_checked,
            first_bad_entry_id=str(report.first_bad_entry_id or ""),
            expected_hash=report.expected_hash,
            actual_hash=report.actual_hash,
        )

    async def GetChainHead(self, request: pb.GetChainHeadRequest, context: Any) -> pb.GetChainHeadResponse:
        head = await self.audit.chain_head()
        return pb.GetChainHeadResponse(
            entry_id=str(head.entry_id or ""),
            sequence=head.sequence,
            hash=head.hash,
            record_time=timestamp(head.recorded_at),
        )

    async def GetStatement(self, request: pb.GetStatementRequest, context: Any) -> pb.GetStatementResponse:
        participant_id = chart.require_id(request.participant_id, "participant_id")
        result = await self.audit.statement(
            participant_id,
            start=when(request, "start_time"),
            end=when(request, "end_time"),
            basis=basis(request.time_basis),
        )
        return pb.GetStatementResponse(
            participant_id=participant_id,
            start_time=timestamp(result.start) or Timestamp(),
            end_time=timestamp(result.end),
            accounts=[
                pb.AccountStatement(
                    account_code=a.account_code,
                    opening_balance_satoshis=a.opening_balance,
                    closing_balance_satoshis=a.closing_balance,
                    lines=[
                        pb.StatementLine(
                            entry_id=str(line.entry_id),
                            kind=line.kind,
                            memo=line.memo,
                            effective_time=timestamp(line.effective_at),
                            record_time=timestamp(line.recorded_at),
                            amount_satoshis=line.amount,
                            running_balance_satoshis=line.running_balance,
                        )
                        for line in a.lines
                    ],
                )
                for a in result.accounts
            ],
        )

    async def ExportEntries(self, request: pb.ExportEntriesRequest, context: Any):
        flt = _filter(request)
        async for chunk in self.audit.export_csv(flt):
            yield pb.ExportEntriesResponse(csv_text=chunk)

    async def TracePayout(self, request: pb.TracePayoutRequest, context: Any) -> pb.TracePayoutResponse:
        participant_id = chart.require_id(request.participant_id, "participant_id")
        tournament_id = round_number = None
        if request.HasField("round"):
            tournament_id, round_number = request.round.tournament_id, request.round.round_number or None
        rows, token = await history.traces(
            self.db, participant_id, tournament_id, round_number, request.page_size, request.page_token
        )
        return pb.TracePayoutResponse(
            next_page_token=token,
            traces=[
                pb.PayoutTrace(
                    participant_id=r.participant_id,
                    model_id=r.model_id,
                    round=convert.ref(r.tournament_id, r.round_number),
                    allocation_id=str(r.allocation_id),
                    allocation_entry_id=str(r.entry_id or ""),
                    allocated_satoshis=int(r.amount),
                    batch_id=str(r.batch_id or ""),
                    batch_state=convert.BATCH_STATES.get(r.batch_state, 0),
                    txid=r.txid or "",
                    vout=r.vout if r.vout is not None else 0,
                    address=r.address or "",
                    output_satoshis=int(r.output_amount or 0),
                )
                for r in rows
            ],
        )
