"""Settings of the leaderboard service."""

from __future__ import annotations

from shared.config import LeaderboardBaseSettings


class LeaderboardSettings(LeaderboardBaseSettings):
    pass
