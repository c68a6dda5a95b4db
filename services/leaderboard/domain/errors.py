"""Errors of the leaderboard domain; each derives from a ``shared.errors`` class so the interceptor
maps it to the right gRPC status, and names the field the caller must fix."""

from __future__ import annotations

from shared.errors import InvalidArgument, NotFound


class MetricNotScored(InvalidArgument):
    """The requested metric has no values on this board (e.g. AUC of a graded tournament)."""

    default_reason = "METRIC_NOT_SCORED"


class BadWeights(InvalidArgument):
    """A reputation window or weight specification that cannot be applied."""

    default_reason = "BAD_REPUTATION_WEIGHTS"


class BoardNotFound(NotFound):
    """No public board for the round: unknown, or not published yet (which readers must not see)."""

    default_reason = "BOARD_NOT_FOUND"


class ModelNotFound(NotFound):
    """No published result (and no open-round score) for the model."""

    default_reason = "MODEL_NOT_FOUND"
