"""The upload assembler: each chunk checked against the round's bounds as it arrives."""

from __future__ import annotations

import numpy as np
import pytest

from services.submissions.domain.upload_stream import UploadAssembler, UploadBounds, longest_id_bytes
from shared.errors import InvalidArgument

BOUNDS = UploadBounds.for_round(round_rows=4, max_id_bytes=longest_id_bytes(["a1", "a2", "b1", "é3"]))


def values(n: int) -> bytes:
    return np.full(n, 0.5, dtype="<f4").tobytes()


def test_chunks_assemble_in_order_with_a_digest():
    assembler = UploadAssembler(BOUNDS)
    assembler.add(b"a1\na2", values(2))
    assembler.add("b1\né3".encode(), values(2))
    ids, vals, digest = assembler.finish()
    assert ids.tolist() == ["a1", "a2", "b1", "é3"] and vals.dtype == np.float32 and len(digest) == 32
    assert ids.dtype.itemsize // 4 <= BOUNDS.max_id_bytes  # no wider than the round's longest id


@pytest.mark.parametrize(
    ("ids", "n", "words"),
    [
        (b"a1\n" + b"x" * 10, 2, "longer than every id of this round"),
        (b"a1\n\xff\xfe", 2, "not UTF-8"),
        (b"a1\na2", 3, "2 ids but 3 values"),
        (b"\n".join([b"a1"] * 9), 9, "rows"),
    ],
)
def test_a_bad_chunk_is_refused_as_it_arrives(ids, n, words):
    with pytest.raises(InvalidArgument, match=words) as info:
        UploadAssembler(BOUNDS).add(ids, values(n))
    assert info.value.metadata["chunk"] == "1"


def test_total_bytes_and_empty_uploads_are_refused():
    with pytest.raises(InvalidArgument, match=f"passed {BOUNDS.max_bytes} bytes"):
        UploadAssembler(BOUNDS).add(b"x" * 100_000, values(1))  # refused by its size, before it is split
    with pytest.raises(InvalidArgument, match="no predictions"):
        UploadAssembler(BOUNDS).finish()
    with pytest.raises(InvalidArgument, match="float32"):
        UploadAssembler(BOUNDS).add(b"a1", b"\0\0\0")
