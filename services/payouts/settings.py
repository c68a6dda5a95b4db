"""Settings of the payouts service."""

from __future__ import annotations

from shared.config import PayoutsBaseSettings


class PayoutsSettings(PayoutsBaseSettings):
    pass
