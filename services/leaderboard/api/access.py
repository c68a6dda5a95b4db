"""Who may call which LeaderboardService RPC: reads are public (anyone, any key), publishing is the operator's."""

from shared.auth import ANONYMOUS, Role, Scope

P, O, A = Role.PARTICIPANT, Role.OPERATOR, Role.AUDITOR
READ = {ANONYMOUS, P, O, A}
LEADERBOARD = {
    "PublishRound": {O},
    "GetRoundLeaderboard": READ,
    "GetReputation": READ,
    "GetModelProfile": READ,
    "ListRounds": READ,
}

# The scope each non-public RPC needs (shared.auth.Scope); public reads need none.
LEADERBOARD_SCOPES = {"PublishRound": Scope.OPERATE}
