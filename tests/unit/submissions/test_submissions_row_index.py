"""The vectorised id -> row lookup of a round."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.submissions.domain import row_index
from services.submissions.domain.row_index import RoundRows, as_id_array
from shared.errors import InvalidArgument


@settings(max_examples=120, deadline=None)
@given(
    round_ids=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=60, unique=True),
    others=st.lists(st.text(max_size=14), max_size=20),
    data=st.data(),
)
def test_positions_match_a_dict(round_ids: list[str], others: list[str], data: st.DataObject) -> None:
    round_ids = [i for i in round_ids if not i.endswith("\0")]  # numpy strips trailing NULs
    if not round_ids:
        return
    rows = RoundRows.from_ids(round_ids)
    lookup = {i: n for n, i in enumerate(round_ids)}
    queries = data.draw(st.lists(st.sampled_from(round_ids), max_size=40)) + others
    queries = [q for q in queries if not q.endswith("\0")]
    expected = [lookup.get(q, -1) for q in queries]
    assert rows.positions(as_id_array(queries)).tolist() == expected


def test_full_round_lookup_and_wider_or_narrower_queries() -> None:
    ids = np.char.add("t", np.char.zfill(np.random.default_rng(0).permutation(36_072).astype(str), 6))
    rows = RoundRows.from_ids(ids)
    order = np.random.default_rng(1).permutation(len(ids))
    assert np.array_equal(rows.positions(ids[order]), order)
    queries = np.array(["t", ids[5], ids[6] + "x", "t0000001", ids[7].upper()], dtype="<U20")  # ids are case-sensitive
    assert rows.positions(queries).tolist() == [-1, 5, -1, -1, -1]


def test_round_ids_must_be_unique_and_non_empty() -> None:
    with pytest.raises(InvalidArgument, match="1 ids repeat: 'a'"):
        RoundRows.from_ids(["a", "b", "a"])
    with pytest.raises(InvalidArgument, match="must not be empty"):
        RoundRows.from_ids(["a", ""])
    with pytest.raises(InvalidArgument, match="at least one"):
        RoundRows.from_ids([])


def test_hash_collisions_never_map_a_wrong_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a deliberately terrible hash, lookups stay right (ids are confirmed by string)."""
    real = row_index._hash
    monkeypatch.setattr(row_index, "_hash", lambda points, seed: real(points, seed) & np.uint64(0xFF << 56))
    ids = [f"id{i}" for i in range(5)]
    try:
        rows = RoundRows.from_ids(ids)
    except InvalidArgument as error:  # every seed collided: refused, never a wrong index
        assert "hash collisions" in error.message
        return
    assert rows.positions(as_id_array(["id3", "zzz", "id0"])).tolist() == [3, -1, 0]


def test_colliding_seeds_are_skipped_or_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(row_index, "_hash", lambda points, seed: np.zeros(len(points), dtype=np.uint64))
    with pytest.raises(InvalidArgument, match="hash collisions"):
        RoundRows.from_ids(["a", "b"])


def test_id_arrays_from_bytes_and_objects() -> None:
    assert as_id_array(np.array([b"t1", b"t2"])).tolist() == ["t1", "t2"]
    assert as_id_array(np.array(["t1", 2], dtype=object)).tolist() == ["t1", "2"]
    with pytest.raises(InvalidArgument, match="flat"):
        as_id_array(np.array([["a"]]))
