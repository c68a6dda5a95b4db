"""Settings of the payouts service (environment variables with the ``CROWDQUANT_`` prefix).

The wallet secret is a ``SecretStr``: it never appears in a repr, a log line or a config error. When
it is unset on the default ``bitcoinlib_test`` network the service generates a seed once and keeps it
in the data folder (see ``services.payouts.bitcoin.wallets``); any other network refuses to pay without it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from shared.config import PayoutsBaseSettings


class PayoutsSettings(PayoutsBaseSettings):
    wallet_secret: SecretStr | None = None
    """``CROWDQUANT_WALLET_SECRET``: BIP39 mnemonic, hex BIP32 seed or extended private key (or ``_FILE``)."""
    wallet_name: str = Field(default="crowdquant-payouts", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    """Prefix of the bitcoinlib wallet name; the network is appended, so one database holds several."""
    wallet_database: Literal["postgres", "sqlite"] = "postgres"
    """Where bitcoinlib keeps the wallet: schema ``payouts_wallet`` of the service's database, or a
    SQLite file under the data folder."""
    fee_rate_sat_vb: int = Field(default=2, ge=1, le=10_000)
    """Default fee rate of a batch, sat/vB."""
    fee_rate_ceiling_sat_vb: int = Field(default=100, ge=1, le=10_000)
    """Any requested or default rate is clamped to [1, ceiling]."""
    max_outputs_per_batch: int = Field(default=1000, ge=1, le=2000)
    """Payee outputs per transaction before a batch is split."""
    auto_fund_test_wallet: bool = True
    """On bitcoinlib_test only: create test coins when the wallet cannot cover a batch (booked as funding)."""
    recovery_attempts: int = Field(default=30, ge=1, le=10_000)
    """Start-up recovery retries (e.g. while submissions is not up yet) before waiting for RecoverBatches."""
