"""Exceptions of the submissions domain and the wording of their examples.

Each class derives from a ``shared.errors`` class so the error interceptor maps it to the right
gRPC status; the subclasses exist so the service and the client can react to one situation
(e.g. show a malformed file's line) without parsing messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from crowdquant.formats.errors import list_examples
from shared.errors import FailedPrecondition, InvalidArgument


@dataclass(frozen=True)
class Problem:
    """One kind of fault found in an upload, e.g. 3 missing ids with the first examples."""

    kind: str
    count: int
    examples: tuple[str, ...]
    detail: str = ""
    per_row: bool = True  # examples are some of ``count`` rows (else a summary, e.g. "all equal 0.5")

    def describe(self) -> str:
        what = f"{self.count} {self.kind}"
        if self.detail:
            what = f"{what} ({self.detail})"
        shown = list_examples(self.examples, self.count if self.per_row else len(self.examples))
        return f"{what}: {shown}" if shown else what


class UploadRejected(InvalidArgument):
    """An upload failed its checks; nothing of it may be stored.

    ``problems`` carries every fault found (not just the first), so a participant fixes them all
    in one go instead of discovering them one upload at a time.
    """

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        message = "upload refused: " + "; ".join(p.describe() for p in self.problems)
        metadata = {p.kind.replace(" ", "_"): str(p.count) for p in self.problems}
        super().__init__(message, reason="UPLOAD_REJECTED", metadata=metadata)


class CommitmentMismatch(InvalidArgument):
    """Revealed targets (or salt) do not hash to the commitment published when the round opened."""

    def __init__(self, message: str):
        super().__init__(message, reason="COMMITMENT_MISMATCH")


class IllegalTransition(FailedPrecondition):
    """A round was asked to move to a state its lifecycle does not allow from where it is."""

    def __init__(self, message: str, *, current: str, requested: str):
        self.current = current
        self.requested = requested
        super().__init__(
            message, reason="ROUND_STATE", metadata={"current_state": current, "requested_state": requested}
        )
