"""Settings of the submissions service."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.config import SubmissionsBaseSettings


class SubmissionsSettings(SubmissionsBaseSettings):
    # Ed25519 private key (PEM) that signs upload receipts; unset = a key generated once and kept
    # in the submissions schema.
    receipt_signing_key: SecretStr | None = None
    # Tell scoring about each accepted upload so its Ladder score appears within a second.
    notify_scoring: bool = True
    # Uploads each API key may start: a sustained rate per minute and a burst.
    uploads_per_minute: float = Field(default=120.0, gt=0, le=100_000)
    upload_burst: int = Field(default=30, ge=1, le=10_000)
    # Uploads checked and stored at once; the rest wait their turn (a bounded queue in front of the
    # database pool instead of pool timeouts under load).
    upload_concurrency: int = Field(default=6, ge=1, le=200)
