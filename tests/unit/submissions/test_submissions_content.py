"""Canonical stored bytes of a submission and their hash."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from services.submissions.domain.content import canonical_bytes, content_sha256, from_canonical_bytes
from shared.errors import InvalidArgument


def test_bytes_are_float32_little_endian_and_hash_is_their_sha256() -> None:
    values = np.array([0.5, 0.25, 1.0], dtype=np.float64)
    data = canonical_bytes(values)
    assert data == np.array([0.5, 0.25, 1.0], dtype="<f4").tobytes() and len(data) == 12
    assert content_sha256(values) == hashlib.sha256(data).hexdigest()
    assert np.array_equal(from_canonical_bytes(data, 3), values.astype(np.float32))


def test_equal_predictions_have_equal_bytes() -> None:
    assert canonical_bytes(np.array([-0.0, 0.5])) == canonical_bytes(np.array([0.0, 0.5], dtype=">f4"))


def test_wrong_sizes_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="a round of 4 rows needs 16"):
        from_canonical_bytes(b"\0" * 12, 4)
    with pytest.raises(InvalidArgument, match="flat array"):
        canonical_bytes(np.zeros((2, 2)))
