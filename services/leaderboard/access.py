"""Who may call which LeaderboardService RPC: reads are public (anyone, any key), publishing is the operator's."""

from shared.auth import ANONYMOUS, Role

P, O, A = Role.PARTICIPANT, Role.OPERATOR, Role.AUDITOR
READ = {ANONYMOUS, P, O, A}
LEADERBOARD = {
    "PublishRound": {O},
    "GetRoundLeaderboard": READ,
    "GetReputation": READ,
    "GetModelProfile": READ,
    "ListRounds": READ,
}
