"""Exceptions of the submissions domain and the wording of their examples.

Each class derives from a ``shared.errors`` class so the error interceptor maps it to the right
gRPC status; the subclasses exist so the service and the client can react to one situation
(e.g. show a malformed file's line) without parsing messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.errors import FailedPrecondition, InvalidArgument

#: How many offending rows a message names; the count always gives the full extent.
MAX_EXAMPLES = 10


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


def list_examples(examples: Sequence[str], total: int) -> str:
    """``a, b, c`` or ``a, b, c ... and 7 more`` so a message stays short but honest."""
    shown = ", ".join(examples[:MAX_EXAMPLES])
    rest = total - min(len(examples), MAX_EXAMPLES)
    return f"{shown} ... and {rest} more" if rest > 0 else shown


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


class MalformedFile(InvalidArgument):
    """A file could not be parsed; ``line`` is 1-based and counts the header (0: whole file)."""

    def __init__(self, source: str, line: int, problem: str):
        self.source = source
        self.line = line
        where = f"{source}, line {line}" if line else source
        super().__init__(f"{where}: {problem}", reason="MALFORMED_FILE", metadata={"line": str(line)})


class CommitmentMismatch(InvalidArgument):
    """Revealed targets (or salt) do not hash to the commitment published when the round opened."""

    def __init__(self, message: str):
        super().__init__(message, reason="COMMITMENT_MISMATCH")


class ReceiptInvalid(InvalidArgument):
    """A receipt does not verify: a field was altered, or another key signed it."""

    def __init__(self, message: str):
        super().__init__(message, reason="RECEIPT_INVALID")


class IllegalTransition(FailedPrecondition):
    """A round was asked to move to a state its lifecycle does not allow from where it is."""

    def __init__(self, message: str, *, current: str, requested: str):
        self.current = current
        self.requested = requested
        super().__init__(
            message, reason="ROUND_STATE", metadata={"current_state": current, "requested_state": requested}
        )
