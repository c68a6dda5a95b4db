"""Settings of the scoring service."""

from __future__ import annotations

from shared.config import ScoringBaseSettings


class ScoringSettings(ScoringBaseSettings):
    pass
