"""Who may call which payouts and ledger-audit RPC (ownership is checked in the handlers).

Only operators move money; auditors only read; participants see their own records. Of the other
services, scoring reads round stakes and the leaderboard reads round stakes and allocations.
"""

from shared.auth import Role, ServiceName

P, O, A = Role.PARTICIPANT, Role.OPERATOR, Role.AUDITOR
_, SCORING, LEADERBOARD, _ = (name.identity for name in ServiceName)
PAYOUTS = {
    "RecordDeposit": {O},
    "GetParticipantBalance": {P, O, A},
    "SetStake": {P},
    "GetStake": {P, O, A},
    "ListStakes": {P, O, A},
    "GetRoundStakes": {O, SCORING, LEADERBOARD},
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
