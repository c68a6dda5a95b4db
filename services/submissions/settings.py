"""Settings of the submissions service."""

from __future__ import annotations

from pydantic import SecretStr

from shared.config import SubmissionsBaseSettings


class SubmissionsSettings(SubmissionsBaseSettings):
    # Ed25519 private key (PEM) that signs upload receipts; unset = a key generated once and kept
    # in the submissions schema.
    receipt_signing_key: SecretStr | None = None
    # Tell scoring about each accepted upload so its Ladder score appears within a second.
    notify_scoring: bool = True
