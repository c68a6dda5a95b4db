"""An upload taken chunk by chunk, within bounds known when its stream opens.

Why: an upload used to be buffered whole and then parsed into a fixed-width string array as wide
as its longest id, so one 100,000-character id among 36,000 rows asked for gigabytes, and twenty
60 MB chunks were held before anything was checked. Here every chunk is checked as it arrives,
against the round it is for: no id longer than the round's longest id (in UTF-8 bytes), no more
rows than ``MAX_ROWS_FACTOR`` times the round's, no more bytes than those rows can take. The first
chunk over a bound refuses the upload, so what is held is at most about the size of an honest
upload and never depends on what the sender chooses. Pure: no grpc, no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.errors import InvalidArgument

F32 = np.dtype("<f4")
#: An upload may carry at most this many times the round's rows before it is refused.
MAX_ROWS_FACTOR = 2
#: Bytes a row takes besides its id: its '\n' separator and its float32 value.
ROW_OVERHEAD = 5


@dataclass(frozen=True)
class UploadBounds:
    """What one upload to a round may hold: rows, id length (UTF-8 bytes) and total bytes."""

    round_rows: int
    max_id_bytes: int
    max_rows: int
    max_bytes: int

    @classmethod
    def for_round(cls, round_rows: int, max_id_bytes: int, factor: int = MAX_ROWS_FACTOR) -> UploadBounds:
        max_rows = factor * max(round_rows, 1)
        return cls(
            round_rows=round_rows,
            max_id_bytes=max(max_id_bytes, 1),
            max_rows=max_rows,
            max_bytes=max_rows * (max(max_id_bytes, 1) + ROW_OVERHEAD),
        )


def longest_id_bytes(ids: np.ndarray | list[str]) -> int:
    """The longest of ``ids`` in UTF-8 bytes (the bound an upload's ids are held to)."""
    values = ids.tolist() if isinstance(ids, np.ndarray) else ids
    return max((len(str(i).encode("utf-8")) for i in values), default=1)


def _refuse(message: str, number: int, reason: str, **metadata: str) -> InvalidArgument:
    return InvalidArgument(f"chunk {number}: {message}", reason=reason, metadata={"chunk": str(number), **metadata})


@dataclass
class UploadAssembler:
    """Collects an upload's chunks, refusing the first that breaks a bound.

    ``add`` checks a chunk before it allocates anything in proportion to it; ``finish`` returns the
    ids (a numpy unicode array no wider than the round's longest id), the float32 values and a
    SHA-256 over the raw chunks (the request-id idempotency digest).
    """

    bounds: UploadBounds
    chunks: int = 0
    rows: int = 0
    size: int = 0
    _ids: list[np.ndarray] = field(default_factory=list)
    _values: list[np.ndarray] = field(default_factory=list)
    _digest: Any = field(default_factory=hashlib.sha256)

    def add(self, ids: bytes, values: bytes) -> None:
        b = self.bounds
        number = self.chunks + 1
        self.size += len(ids) + len(values)
        if self.size > b.max_bytes:
            raise _refuse(
                f"the upload passed {b.max_bytes:,} bytes, more than {b.max_rows:,} rows of this "
                f"round's ids can take (the round has {b.round_rows:,} rows)",
                number,
                "UPLOAD_TOO_LARGE",
                max_bytes=str(b.max_bytes),
            )
        if len(values) % 4:
            raise _refuse(
                "values must be little-endian float32 (length a multiple of 4)", number, "BAD_VALUES", field="values"
            )
        n = len(values) // 4
        if self.rows + n > b.max_rows:
            raise _refuse(
                f"the upload passed {b.max_rows:,} rows; the round has {b.round_rows:,}",
                number,
                "TOO_MANY_ROWS",
                max_rows=str(b.max_rows),
            )
        n_ids = ids.count(b"\n") + 1 if ids else 0  # counted before splitting: no allocation per id yet
        if n_ids != n:
            raise _refuse(f"{n_ids} ids but {n} values; they must pair up", number, "IDS_VALUES_MISMATCH")
        parts = ids.split(b"\n") if ids else []
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        if lengths.size and int(lengths.max()) > b.max_id_bytes:
            at = int(np.argmax(lengths > b.max_id_bytes))
            raise _refuse(
                f"unknown id at upload row {self.rows + at}: it is {int(lengths[at]):,} bytes long, longer "
                f"than every id of this round (at most {b.max_id_bytes} bytes)",
                number,
                "ID_TOO_LONG",
                field="ids",
                max_id_bytes=str(b.max_id_bytes),
            )
        try:
            text = ids.decode("utf-8")
        except UnicodeDecodeError as exc:
            row = ids.count(b"\n", 0, exc.start)
            raise _refuse(
                f"the id at upload row {self.rows + row} is not UTF-8 text (byte {ids[exc.start]:#04x})",
                number,
                "ID_NOT_UTF8",
                field="ids",
            ) from None
        width = max(1, int(lengths.max()) if lengths.size else 1)  # chars <= bytes <= the round's longest id
        self._ids.append(np.asarray(text.split("\n") if text or n else [], dtype=f"<U{width}"))
        self._values.append(np.frombuffer(values, dtype=F32).copy())
        self._digest.update(len(ids).to_bytes(8, "little"))
        self._digest.update(ids)
        self._digest.update(values)
        self.chunks = number
        self.rows += n

    def finish(self) -> tuple[np.ndarray, np.ndarray, bytes]:
        if not self._ids:
            raise InvalidArgument("the upload has a header but no predictions", reason="UPLOAD_EMPTY")
        return np.concatenate(self._ids), np.concatenate(self._values), self._digest.digest()
