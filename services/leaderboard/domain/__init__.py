"""Pure leaderboard rules: metrics and their direction, ranking with ties, statistical ties from
confidence intervals, reputation weights, and the read model of published rounds.

Nothing here does I/O; the service's handlers and servicer are thin adapters around it.
"""
