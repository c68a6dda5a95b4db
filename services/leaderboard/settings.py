"""Settings of the leaderboard service (``CROWDQUANT_LEADERBOARD_*`` besides the common ones).

Reputation: ``REPUTATION_WINDOW_ROUNDS`` is the default N (a request may ask for another) and
``REPUTATION_WEIGHTS`` the weighting scheme (see ``services.leaderboard.domain.reputation``).
Freshness: a replica checks the database's publish counter at most every
``CACHE_CHECK_SECONDS``; the open round's state and Ladder board are re-read from submissions and
scoring at most every ``OPEN_ROUND_REFRESH_SECONDS``, in the background, while readers get the
last board at once; payouts are polled every ``PAYOUTS_REFRESH_SECONDS`` (0 = never) for
allocations of published rounds that were not known when they were published.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from services.leaderboard.domain.reputation import MAX_WINDOW, WeightScheme
from shared import config


def _env(name: str) -> str:
    return f"CROWDQUANT_LEADERBOARD_{name}"


# The base is reached through the module so that the service registry, which picks this module's
# first ``Leaderboard*Settings`` name, finds this class.
class LeaderboardSettings(config.LeaderboardBaseSettings):
    reputation_window_rounds: int = Field(
        default=4, ge=1, le=MAX_WINDOW, validation_alias=_env("REPUTATION_WINDOW_ROUNDS")
    )
    reputation_weights: str = Field(default="linear", validation_alias=_env("REPUTATION_WEIGHTS"))
    cache_check_seconds: float = Field(default=1.0, ge=0, le=60, validation_alias=_env("CACHE_CHECK_SECONDS"))
    open_round_refresh_seconds: float = Field(
        default=5.0, ge=0, le=600, validation_alias=_env("OPEN_ROUND_REFRESH_SECONDS")
    )
    payouts_refresh_seconds: float = Field(
        default=15.0, ge=0, le=3600, validation_alias=_env("PAYOUTS_REFRESH_SECONDS")
    )
    # Tournament shown when a request names none; empty = the one published most recently.
    default_tournament: str = Field(default="", validation_alias=_env("DEFAULT_TOURNAMENT"))
    peer_deadline_seconds: float = Field(default=10.0, gt=0, le=300, validation_alias=_env("PEER_DEADLINE_SECONDS"))

    @field_validator("reputation_weights")
    @classmethod
    def _check_weights(cls, value: str) -> str:
        try:
            WeightScheme.parse(value)
        except Exception as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _window_fits_weights(self) -> LeaderboardSettings:
        limit = self.weight_scheme.max_window
        if self.reputation_window_rounds > limit:
            raise ValueError(
                f"CROWDQUANT_LEADERBOARD_REPUTATION_WINDOW_ROUNDS ({self.reputation_window_rounds}) is "
                f"more than the {limit} weights given in CROWDQUANT_LEADERBOARD_REPUTATION_WEIGHTS"
            )
        return self

    @property
    def weight_scheme(self) -> WeightScheme:
        return WeightScheme.parse(self.reputation_weights)
