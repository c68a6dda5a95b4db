"""Who may call which ScoringService RPC (ownership is checked in the handlers).

Service identities appear only where that service calls: the leaderboard reads scores, the meta
model and the public (Ladder) scores, payouts reads round scores, and only submissions reports
uploads to the Ladder (ScoreValidation).
"""

from shared.auth import Role, Scope, ServiceName

P, O, A = Role.PARTICIPANT, Role.OPERATOR, Role.AUDITOR
SUBMISSIONS, _, LEADERBOARD, PAYOUTS = (name.identity for name in ServiceName)
SCORING = {
    "ScoreRound": {O},
    "GetScoringRun": {O},
    "CancelScoringRun": {O},
    "GetScores": {P, O, A},
    "ListRoundScores": {P, O, A, LEADERBOARD, PAYOUTS},
    "GetMetaModel": {P, O, A, LEADERBOARD},
    "ScoreValidation": {SUBMISSIONS},
    "GetPublicScores": {P, O, A, LEADERBOARD},
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
}
