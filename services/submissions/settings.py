"""Settings of the submissions service."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.config import SubmissionsBaseSettings


class SubmissionsSettings(SubmissionsBaseSettings):
    # Ed25519 private key (PEM) that signs upload receipts; unset = a key generated once and kept
    # in the submissions schema.
    receipt_signing_key: SecretStr | None = None
    # Uploads each API key may start: a sustained rate per minute and a burst.
    uploads_per_minute: float = Field(default=120.0, gt=0, le=100_000)
    upload_burst: int = Field(default=30, ge=1, le=10_000)
    # Uploads checked and stored at once; the rest wait their turn (a bounded queue in front of the
    # database pool instead of pool timeouts under load).
    upload_concurrency: int = Field(default=6, ge=1, le=200)
    # Upload streams open at once: per participant (all its keys together) and for the whole
    # process. Past either the new stream is refused with RESOURCE_EXHAUSTED; other RPCs (health
    # included) are never counted, so a participant holding streams open starves only itself.
    upload_streams_per_participant: int = Field(default=4, ge=1, le=1000)
    upload_streams: int = Field(default=64, ge=1, le=10_000)
    # An upload stream must send its next message within this many seconds, and finish within the
    # deadline; an idle or endless stream is cut with DEADLINE_EXCEEDED and frees its slot.
    upload_idle_seconds: float = Field(default=20.0, gt=0, le=3600)
    upload_deadline_seconds: float = Field(default=300.0, gt=0, le=24 * 3600)
    # Largest request message (one upload chunk); a larger one is refused by gRPC before it is read.
    # Upload chunks are a few hundred kB (8,192 rows), so a few MB is plenty.
    max_receive_message_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024, le=1024 * 1024 * 1024)
    # Active API keys and models per participant.
    max_keys_per_participant: int = Field(default=10, ge=1, le=10_000)
    max_models_per_participant: int = Field(default=50, ge=1, le=100_000)
