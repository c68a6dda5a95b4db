"""Who may call which LeaderboardService RPC: reads are public, publishing is the operator's."""

from shared.auth import ANONYMOUS, Role

P, O, A, S = Role.PARTICIPANT, Role.OPERATOR, Role.AUDITOR, Role.SERVICE
READ = {ANONYMOUS, P, O, A, S}
LEADERBOARD = {
    "PublishRound": {O},
    "GetRoundLeaderboard": READ,
    "GetReputation": READ,
    "GetModelProfile": READ,
    "ListRounds": READ,
}
