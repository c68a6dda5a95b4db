"""Canonical bytes of a stored submission and their SHA-256.

Why a canonical form: the content hash goes into the signed receipt and is what a participant,
scoring and an auditor compare, so everyone must hash the same bytes. The form is simply the
predictions as little-endian float32 in the round's row order (validation then live), exactly the
bytes stored, so ``sha256sum`` of the stored blob reproduces the hash. -0.0 is written as 0.0 so
equal predictions always have equal bytes.
"""

from __future__ import annotations

import hashlib

import numpy as np

from shared.errors import InvalidArgument

DTYPE = np.dtype("<f4")


def canonical_bytes(aligned: np.ndarray) -> bytes:
    """Predictions aligned to the round's row order -> the bytes to store and hash."""
    values = np.asarray(aligned)
    if values.ndim != 1:
        raise InvalidArgument(f"predictions must be a flat array aligned to the round's rows, got {values.shape}")
    return (values.astype(DTYPE) + DTYPE.type(0.0)).tobytes()


def content_sha256(aligned: np.ndarray) -> str:
    """Hex SHA-256 of ``canonical_bytes(aligned)``."""
    return hashlib.sha256(canonical_bytes(aligned)).hexdigest()


def from_canonical_bytes(data: bytes, n_rows: int) -> np.ndarray:
    """Stored bytes -> float32 predictions (native byte order), checking the row count."""
    if len(data) != n_rows * DTYPE.itemsize:
        raise InvalidArgument(
            f"stored predictions have {len(data)} bytes; a round of {n_rows} rows needs {n_rows * DTYPE.itemsize}"
        )
    return np.frombuffer(data, dtype=DTYPE).astype(np.float32)
