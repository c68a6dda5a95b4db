"""The generated test-network wallet seed: made once, atomically, then always the same."""

from __future__ import annotations

import os
import stat

import pytest

from services.payouts.bitcoin.wallets import _read_or_create_seed


def test_seed_is_created_once_and_read_back(tmp_path) -> None:
    path = tmp_path / "payouts" / "wallet-seed"
    seed = _read_or_create_seed(path)
    assert len(seed.split()) == 24
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _read_or_create_seed(path) == seed
    assert [p.name for p in path.parent.iterdir()] == ["wallet-seed"]


def test_a_failure_while_writing_leaves_no_seed_behind(tmp_path, monkeypatch) -> None:
    """A crash before the seed is whole must not leave an empty or partial file that would be read as
    the seed from then on (a different wallet secret: payouts could never open its wallet again)."""
    path = tmp_path / "wallet-seed"
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        _read_or_create_seed(path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(os, "fsync", real_fsync)
    seed = _read_or_create_seed(path)
    assert len(seed.split()) == 24 and _read_or_create_seed(path) == seed
