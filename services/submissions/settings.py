"""Settings of the submissions service."""

from __future__ import annotations

from shared.config import SubmissionsBaseSettings


class SubmissionsSettings(SubmissionsBaseSettings):
    pass
