"""Who may call which payouts and ledger-audit RPC (ownership is checked in the handlers).

Only operators move money; auditors only read; participants see their own records. Of the other
services, scoring reads round stakes and the leaderboard reads round stakes and allocations.
"""

from shared.auth import Role, Scope, ServiceName

P, O, A = Role.PARTICIPANT, Role.OPERATOR, Role.AUDITOR
_, SCORING, LEADERBOARD, _ = (name.identity for name in ServiceName)
PAYOUTS = {
    "RecordDeposit": {O},
    "GetParticipantBalance": {P, O, A},
    "SetStake": {P},
    "GetStake": {P, O, A},
    "ListStakes": {P, O, A},
    "GetRoundStakes": {O, LEADERBOARD},
    "AllocateRound": {O},
    "GetAllocation": {P, O, A, LEADERBOARD},
    "CreateBatch": {O},
    "GetBatch": {O, A},
    "ListBatches": {O, A},
    "RecoverBatches": {O},
    "BumpBatchFee": {O},
    "ConfirmBatch": {O},
    "VoidBatch": {O},
    "Reconcile": {O, A},
    "GetPayouts": {P, O, A},
}
LEDGER_AUDIT = {
    rpc: {A, O}
    for rpc in (
        "ListAccounts",
        "GetBalance",
        "ListEntries",
        "GetEntry",
        "GetTrialBalance",
        "VerifyChain",
        "GetChainHead",
        "GetStatement",
        "ExportEntries",
        "TracePayout",
    )
}

# The scope each RPC needs (shared.auth.Scope): reads need read; moving money is operate; a
# participant's own stake is stake.
READ, OPERATE = Scope.READ, Scope.OPERATE
PAYOUTS_SCOPES = {
    "RecordDeposit": OPERATE,
    "GetParticipantBalance": READ,
    "SetStake": Scope.STAKE,
    "GetStake": READ,
    "ListStakes": READ,
    "GetRoundStakes": READ,
    "AllocateRound": OPERATE,
    "GetAllocation": READ,
    "CreateBatch": OPERATE,
    "GetBatch": READ,
    "ListBatches": READ,
    "RecoverBatches": OPERATE,
    "BumpBatchFee": OPERATE,
    "ConfirmBatch": OPERATE,
    "VoidBatch": OPERATE,
    "Reconcile": READ,
    "GetPayouts": READ,
}
LEDGER_AUDIT_SCOPES = dict.fromkeys(LEDGER_AUDIT, READ)
