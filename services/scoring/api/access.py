"""Who may call which ScoringService RPC (ownership is checked in the handlers).

Service identities appear only where that service calls: the leaderboard reads scores, the meta
model and the public (Ladder) scores and says when it published a round, payouts reads round scores.
No service pushes uploads: scoring pulls them (ScoreValidation is the operator's).
"""

from shared.auth import Role, Scope, ServiceName

P, O, A = Role.PARTICIPANT, Role.OPERATOR, Role.AUDITOR
_, _, LEADERBOARD, PAYOUTS = (name.identity for name in ServiceName)
SCORING = {
    "ScoreRound": {O},
    "GetScoringRun": {O},
    "CancelScoringRun": {O},
    "GetScores": {P, O, A},
    "ListRoundScores": {P, O, A, LEADERBOARD, PAYOUTS},
    "GetMetaModel": {P, O, A, LEADERBOARD},
    "ScoreValidation": {O},
    "GetPublicScores": {P, O, A, LEADERBOARD},
    "MarkRoundPublished": {O, LEADERBOARD},
}

# The scope each RPC needs (shared.auth.Scope).
SCORING_SCOPES = {
    "ScoreRound": Scope.OPERATE,
    "GetScoringRun": Scope.READ,
    "CancelScoringRun": Scope.OPERATE,
    "GetScores": Scope.READ,
    "ListRoundScores": Scope.READ,
    "GetMetaModel": Scope.READ,
    "ScoreValidation": Scope.OPERATE,
    "GetPublicScores": Scope.READ,
    "MarkRoundPublished": Scope.OPERATE,
}
