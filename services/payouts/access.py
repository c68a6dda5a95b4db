"""Who may call which payouts and ledger-audit RPC (ownership is checked in the handlers).

Only operators move money; auditors only read; participants see their own records. The service role
(other crowdquant services) reads round stakes (scoring) and allocations (the leaderboard).
"""

from shared.auth import Role

P, O, A, S = Role.PARTICIPANT, Role.OPERATOR, Role.AUDITOR, Role.SERVICE
PAYOUTS = {
    "RecordDeposit": {O},
    "GetParticipantBalance": {P, O, A},
    "SetStake": {P},
    "GetStake": {P, O, A, S},
    "ListStakes": {P, O, A},
    "GetRoundStakes": {O, S},
    "AllocateRound": {O},
    "GetAllocation": {P, O, A, S},
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
