"""Errors the scoring domain raises; the service's error interceptor maps them to gRPC codes."""

from __future__ import annotations

from shared.errors import InvalidArgument

__all__ = ["InvalidScoringInput"]


class InvalidScoringInput(InvalidArgument):
    """Predictions, targets, eras, stakes or losses that cannot be scored as given.

    The message names the offending argument (and row or model index) so the caller can fix it.
    """

    default_reason = "INVALID_SCORING_INPUT"
