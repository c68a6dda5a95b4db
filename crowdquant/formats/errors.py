"""Errors of the public file and receipt formats, shared by the client and the services.

Each derives from a ``shared.errors`` class, so a service maps it to the right gRPC status and a
client can react to one situation (e.g. show a malformed file's line) without parsing messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.errors import InvalidArgument

#: How many offending rows a message names; the count always gives the full extent.
MAX_EXAMPLES = 10


def list_examples(examples: Sequence[str], total: int) -> str:
    """``a, b, c`` or ``a, b, c ... and 7 more`` so a message stays short but honest."""
    shown = ", ".join(examples[:MAX_EXAMPLES])
    rest = total - min(len(examples), MAX_EXAMPLES)
    return f"{shown} ... and {rest} more" if rest > 0 else shown


class MalformedFile(InvalidArgument):
    """A file could not be parsed; ``line`` is 1-based and counts the header (0: whole file)."""

    def __init__(self, source: str, line: int, problem: str):
        self.source = source
        self.line = line
        where = f"{source}, line {line}" if line else source
        super().__init__(f"{where}: {problem}", reason="MALFORMED_FILE", metadata={"line": str(line)})


class ReceiptInvalid(InvalidArgument):
    """A receipt does not verify: a field was altered, or another key signed it."""

    def __init__(self, message: str):
        super().__init__(message, reason="RECEIPT_INVALID")
