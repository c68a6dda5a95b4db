"""Commit-reveal of the hidden validation targets."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.submissions.domain import commitment
from services.submissions.domain.errors import CommitmentMismatch
from shared.errors import InvalidArgument

IDS = np.array(["t000003", "t000001", "t000002"])
TARGETS = np.array([1.0, 0.0, 0.5], dtype=np.float32)
SALT = bytes(range(32))


def test_commitment_is_sha256_of_the_documented_layout() -> None:
    body = struct.pack("<Q", 3) + b"".join(struct.pack("<I", 7) + i.encode() for i in IDS.tolist())
    body += TARGETS.astype("<f4").tobytes()
    expected = hashlib.sha256(commitment.VERSION + SALT + body).hexdigest()
    assert commitment.commit(IDS, TARGETS, SALT) == expected
    assert commitment.canonical_bytes(IDS, TARGETS) == commitment.VERSION + body


def test_matching_reveal_verifies() -> None:
    salt = commitment.new_salt()
    assert len(salt) == 32 and salt != commitment.new_salt()
    digest = commitment.commit(IDS, TARGETS, salt)
    commitment.verify(digest, IDS, TARGETS, salt, expected_ids=IDS)
    commitment.verify(digest.upper(), list(IDS), TARGETS.astype(np.float64), salt)


@pytest.mark.parametrize(
    ("ids", "targets", "salt"),
    [
        (IDS, np.array([1.0, 0.0, 0.75], dtype=np.float32), SALT),  # a target changed
        (IDS[[1, 0, 2]], TARGETS[[1, 0, 2]], SALT),  # the same pairs, another row order
        (IDS, TARGETS, bytes(32)),  # another salt
    ],
)
def test_any_difference_is_refused(ids: np.ndarray, targets: np.ndarray, salt: bytes) -> None:
    digest = commitment.commit(IDS, TARGETS, SALT)
    with pytest.raises(CommitmentMismatch, match="committed to") as info:
        commitment.verify(digest, ids, targets, salt)
    assert isinstance(info.value, InvalidArgument) and info.value.reason == "COMMITMENT_MISMATCH"


def test_wrong_rows_are_named_before_hashing() -> None:
    digest = commitment.commit(IDS, TARGETS, SALT)
    with pytest.raises(CommitmentMismatch, match=r"row 0: 't000001' \(expected 't000003'\)"):
        commitment.verify(digest, IDS[[1, 0, 2]], TARGETS, SALT, expected_ids=IDS)
    with pytest.raises(CommitmentMismatch, match="2 rows, but the round has 3"):
        commitment.verify(digest, IDS[:2], TARGETS[:2], SALT, expected_ids=IDS)


@pytest.mark.parametrize(
    ("digest", "targets", "salt", "message"),
    [
        ("abc", TARGETS, SALT, "64 hex"),
        ("zz" * 32, TARGETS, SALT, "64 hex"),
        ("00" * 32, TARGETS, b"short", "salt must be 32 bytes"),
        ("00" * 32, np.array([1.0, np.nan, 2.0]), SALT, r"2 targets .*row 1 \(nan\), row 2 \(2.0\)"),
        ("00" * 32, TARGETS[:2], SALT, "3 ids but 2 targets"),
    ],
)
def test_malformed_input_is_invalid_argument(digest: str, targets: np.ndarray, salt: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        commitment.verify(digest, IDS, targets, salt)


def test_negative_zero_commits_like_zero() -> None:
    assert commitment.commit(IDS, np.array([1.0, -0.0, 0.5]), SALT) == commitment.commit(IDS, TARGETS, SALT)


@settings(max_examples=60, deadline=None)
@given(
    ids=st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=20, unique=True),
    data=st.data(),
)
def test_layout_is_unambiguous(ids: list[str], data: st.DataObject) -> None:
    """Changing one target or splitting/merging ids never keeps the commitment."""
    targets = np.array(
        data.draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=len(ids), max_size=len(ids)))
    )
    digest = commitment.commit(ids, targets, SALT)
    commitment.verify(digest, ids, targets, SALT)
    changed = targets.copy()
    changed[0] = 1.0 - changed[0] if changed[0] != 0.5 else 0.25
    with pytest.raises(CommitmentMismatch):
        commitment.verify(digest, ids, changed, SALT)
    if len(ids) >= 2:
        merged = [ids[0] + ids[1], *ids[2:]]
        assert commitment.commit(merged, targets[1:], SALT) != digest
