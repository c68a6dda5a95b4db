"""Who may call which ScoringService RPC (ownership is checked in the handlers)."""

from shared.auth import Role

P, O, A, S = Role.PARTICIPANT, Role.OPERATOR, Role.AUDITOR, Role.SERVICE
SCORING = {
    "ScoreRound": {O},
    "GetScoringRun": {O, S},
    "CancelScoringRun": {O},
    "GetScores": {P, O, A, S},
    "ListRoundScores": {P, O, A, S},
    "GetMetaModel": {P, O, A, S},
    "ScoreValidation": {S},
    "GetPublicScores": {P, O, A, S},
}
