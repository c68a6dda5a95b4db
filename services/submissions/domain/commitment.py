"""Salted SHA-256 commitment to a round's hidden validation targets (commit-reveal).

Why: the validation targets score the public leaderboard while they are hidden, so participants
must trust that the platform did not change them afterwards. At open the platform publishes
``commit(ids, targets, salt)``; at resolve it reveals targets and salt, and anyone recomputes the
hash. The salt (32 random bytes) keeps the commitment from being brute-forced or compared across
rounds; the version prefix and length-prefixed ids make the byte layout unambiguous, so two
different (ids, targets) pairs can't share canonical bytes.

Canonical bytes (all little-endian)::

    b"crowdquant.targets.commitment.v1\\x00"
    uint64 row count
    per row: uint32 byte length of the UTF-8 id, the id bytes      (row order)
    per row: float32 target                                       (row order, -0.0 written as 0.0)

The commitment is ``sha256(VERSION + salt + body).hexdigest()``, ``body`` being the layout
above after the version prefix (the salt sits between the two).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from collections.abc import Sequence

import numpy as np

from crowdquant.formats.errors import list_examples
from shared.errors import InvalidArgument

from .errors import CommitmentMismatch

VERSION = b"crowdquant.targets.commitment.v1\x00"
SALT_BYTES = 32


def new_salt() -> bytes:
    """32 bytes from the OS CSPRNG; kept secret by the platform until the round resolves."""
    return secrets.token_bytes(SALT_BYTES)


def _checked_targets(targets: np.ndarray) -> np.ndarray:
    values = np.asarray(targets, dtype=np.float64)
    if values.ndim != 1:
        raise InvalidArgument(f"targets must be a 1-D array, got shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0.0) | (values > 1.0))
    if bad.size:
        shown = [f"row {i} ({float(values[i])!r})" for i in bad[:10]]
        raise InvalidArgument(f"{bad.size} targets are not finite numbers in [0, 1]: {list_examples(shown, bad.size)}")
    return values.astype("<f4") + np.float32(0.0)  # + 0.0 turns -0.0 into 0.0: one encoding per value


def _body(ids: Sequence[str] | np.ndarray, targets: np.ndarray) -> bytes:
    values = _checked_targets(targets)
    if len(ids) != len(values):
        raise InvalidArgument(f"{len(ids)} ids but {len(values)} targets: they must be aligned row by row")
    parts = [struct.pack("<Q", len(values))]
    for row_id in ids:
        encoded = str(row_id).encode("utf-8")
        parts.append(struct.pack("<I", len(encoded)))
        parts.append(encoded)
    parts.append(values.tobytes())
    return b"".join(parts)


def canonical_bytes(ids: Sequence[str] | np.ndarray, targets: np.ndarray) -> bytes:
    """The committed layout (without the salt), e.g. for publishing next to the revealed targets."""
    return VERSION + _body(ids, targets)


def _checked_salt(salt: bytes) -> bytes:
    if not isinstance(salt, bytes | bytearray) or len(salt) != SALT_BYTES:
        size = len(salt) if isinstance(salt, bytes | bytearray) else type(salt).__name__
        raise InvalidArgument(f"commitment salt must be {SALT_BYTES} bytes, got {size}")
    return bytes(salt)


def commit(ids: Sequence[str] | np.ndarray, targets: np.ndarray, salt: bytes) -> str:
    """Hex SHA-256 commitment to ``targets`` of rows ``ids`` (row order matters) under ``salt``."""
    return hashlib.sha256(VERSION + _checked_salt(salt) + _body(ids, targets)).hexdigest()


def verify(
    commitment: str,
    ids: Sequence[str] | np.ndarray,
    targets: np.ndarray,
    salt: bytes,
    *,
    expected_ids: Sequence[str] | np.ndarray | None = None,
) -> None:
    """Raise unless revealed ``targets`` and ``salt`` reproduce ``commitment``.

    ``expected_ids`` (the round's validation ids in row order), when given, is compared first so
    a reveal for the wrong rows or in the wrong order is named as such rather than as a hash
    mismatch. Raises ``InvalidArgument`` for malformed input and ``CommitmentMismatch`` (an
    ``InvalidArgument``) when the hash differs.
    """
    if not isinstance(commitment, str) or len(commitment) != 64:
        raise InvalidArgument("commitment must be 64 hex characters (a SHA-256 digest)")
    try:
        bytes.fromhex(commitment)
    except ValueError:
        raise InvalidArgument("commitment must be 64 hex characters (a SHA-256 digest)") from None
    if expected_ids is not None:
        given = np.asarray(ids, dtype=str)
        wanted = np.asarray(expected_ids, dtype=str)
        if len(given) != len(wanted):
            raise CommitmentMismatch(
                f"targets revealed for {len(given)} rows, but the round has {len(wanted)} validation rows"
            )
        differ = np.flatnonzero(given != wanted)
        if differ.size:
            shown = [f"row {i}: {str(given[i])!r} (expected {str(wanted[i])!r})" for i in differ[:10]]
            raise CommitmentMismatch(
                f"{differ.size} revealed row ids differ from the round's validation ids in row order: "
                + list_examples(shown, differ.size)
            )
    recomputed = commit(ids, targets, salt)
    if not hmac.compare_digest(recomputed, commitment.lower()):
        raise CommitmentMismatch(
            f"targets for {len(ids)} rows with the given salt hash to {recomputed}, but the round committed "
            f"to {commitment.lower()}: the targets (values or row order) or the salt differ from those "
            "committed when the round opened"
        )
