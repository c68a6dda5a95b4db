"""Upload checks: ids exactly once, values finite and in range, not constant; aligned output."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.submissions.domain.checks import ValueRule, align_to_rows, check_upload
from services.submissions.domain.dataset import make_ids
from services.submissions.domain.errors import UploadRejected
from services.submissions.domain.row_index import RoundRows
from shared.errors import InvalidArgument

N = 200
ROUND_IDS = make_ids(N, np.random.default_rng(1))
ROWS = RoundRows.from_ids(ROUND_IDS)
VALUES = np.random.default_rng(2).uniform(0.3, 0.7, N)


def _problems(error: UploadRejected) -> dict[str, int]:
    return {p.kind: p.count for p in error.problems}


def test_valid_upload_in_any_order_is_aligned_to_row_order_as_float32() -> None:
    order = np.random.default_rng(3).permutation(N)
    aligned = check_upload(ROWS, ROUND_IDS[order].tolist(), VALUES[order])
    assert aligned.dtype == np.float32
    assert np.array_equal(aligned, VALUES.astype(np.float32))
    assert np.array_equal(check_upload(ROWS, ROUND_IDS, VALUES), aligned)  # the in-order fast path


def test_id_problems_are_all_named_with_counts() -> None:
    ids = ROUND_IDS.copy().astype(object)
    ids[5] = ids[4]  # t at 4 twice, the one at 5 missing
    ids[7] = "nope"  # unknown, and row 7 missing
    with pytest.raises(UploadRejected) as info:
        check_upload(ROWS, ids, VALUES)
    error = info.value
    assert isinstance(error, InvalidArgument) and error.reason == "UPLOAD_REJECTED"
    assert _problems(error) == {"unknown ids": 1, "duplicate ids": 1, "missing ids": 2}
    assert "'nope' (upload index 7)" in error.message
    assert f"'{ROUND_IDS[4]}' 2 times (upload indices [4, 5])" in error.message
    assert f"'{ROUND_IDS[5]}', '{ROUND_IDS[7]}'" in error.message
    assert error.metadata == {"unknown_ids": "1", "duplicate_ids": "1", "missing_ids": "2"}


def test_at_most_ten_examples_but_full_counts() -> None:
    with pytest.raises(UploadRejected) as info:
        check_upload(ROWS, ROUND_IDS[:150], VALUES[:150])
    message = info.value.message
    assert "50 missing ids" in message and "... and 40 more" in message
    assert message.count("'t") == 10


def test_value_problems_name_rows_and_ids() -> None:
    values = VALUES.copy()
    values[[3, 9]] = np.nan
    values[11] = np.inf
    values[[12, 13]] = [-0.1, 1.5]
    with pytest.raises(UploadRejected) as info:
        check_upload(ROWS, ROUND_IDS, values)
    message = info.value.message
    assert _problems(info.value) == {"non-finite values": 3, "values out of range": 2}
    assert f"nan at '{ROUND_IDS[3]}' (upload index 3)" in message
    assert f"1.5 at '{ROUND_IDS[13]}' (upload index 13)" in message
    assert "[0, 1]" in message


def test_open_interval_refuses_the_ends_and_float32_rounding_counts() -> None:
    values = VALUES.copy()
    values[0], values[1] = 0.0, 1.0
    check_upload(ROWS, ROUND_IDS, values)  # closed interval: fine
    with pytest.raises(UploadRejected, match=r"2 values out of range \(predictions must lie in \(0, 1\)"):
        check_upload(ROWS, ROUND_IDS, values, ValueRule(open_interval_eps=0.0))
    values[0], values[1] = 0.5, 1 - 1e-9  # rounds to 1.0 in float32
    with pytest.raises(UploadRejected, match="1 values out of range"):
        check_upload(ROWS, ROUND_IDS, values, ValueRule(open_interval_eps=0.0))
    with pytest.raises(UploadRejected, match=r"\(0.01, 0.99\)"):
        check_upload(ROWS, ROUND_IDS, np.full(N, 0.995) - np.arange(N) * 1e-3, ValueRule(open_interval_eps=0.01))


def test_constant_predictions_are_refused() -> None:
    with pytest.raises(UploadRejected, match=r"200 constant predictions .*: all equal 0.5$"):
        check_upload(ROWS, ROUND_IDS, np.full(N, 0.5))
    nearly = 0.5 + (np.arange(N) % 10) * 6e-8  # distinct float32 values, std ~2e-7
    with pytest.raises(UploadRejected, match=r"constant predictions .*std 1\.7"):
        check_upload(ROWS, ROUND_IDS, nearly)
    check_upload(ROWS, ROUND_IDS, nearly, ValueRule(min_std=0.0))


@pytest.mark.parametrize(
    ("ids", "values", "message"),
    [
        (ROUND_IDS, VALUES[:-1], "200 ids but 199 values"),
        (ROUND_IDS, np.array(["0.5"] * N), "flat array of numbers"),
        (ROUND_IDS, VALUES.reshape(20, 10), "flat array of numbers"),
        ([], np.array([], dtype=float), "all 200 rows of the round are needed"),
    ],
)
def test_shapes_are_checked_first(ids: np.ndarray, values: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        check_upload(ROWS, ids, values)


def test_bad_rules_are_invalid() -> None:
    with pytest.raises(InvalidArgument, match="eps"):
        ValueRule(open_interval_eps=0.5)


# A family of bad uploads: start from a valid one and break it in one or more ways; every one must be
# refused with a message naming each kind of breakage.
BREAKAGES = ("drop", "duplicate", "unknown", "nan", "inf", "negative", "above_one", "constant")
EXPECTED = {
    "drop": "missing ids",
    "duplicate": "duplicate ids",
    "unknown": "unknown ids",
    "nan": "non-finite values",
    "inf": "non-finite values",
    "negative": "values out of range",
    "above_one": "values out of range",
    "constant": "constant predictions",
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.sets(st.sampled_from(BREAKAGES), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(1, 15),
)
def test_any_generated_bad_upload_is_refused_naming_the_problem(kinds: set[str], seed: int, count: int) -> None:
    rng = np.random.default_rng(seed)
    order = rng.permutation(N)
    ids = ROUND_IDS[order].astype(object)
    values = VALUES[order].copy()
    if "constant" in kinds:
        values[:] = 0.5
    # Each breakage gets rows of its own, so one can't overwrite another (disjoint slices of a permutation).
    free = iter(np.array_split(rng.permutation(N - 20), 8))
    picks = lambda: next(free)[:count]  # noqa: E731
    if "nan" in kinds:
        values[picks()] = np.nan
    if "inf" in kinds:
        values[picks()] = -np.inf
    if "negative" in kinds:
        rows = picks()
        values[rows] = -rng.uniform(1e-3, 5, len(rows))
    if "above_one" in kinds:
        rows = picks()
        values[rows] = 1 + rng.uniform(1e-3, 5, len(rows))
    if "unknown" in kinds:
        rows = picks()
        ids[rows] = [f"x{i}" for i in range(len(rows))]
    if "duplicate" in kinds:
        ids[N - 20 : N - 20 + count] = ids[picks()]  # copies of rows no other breakage touches
    if "drop" in kinds:
        keep = np.ones(N, dtype=bool)
        keep[N - 20 + count : N - 20 + 2 * count] = False
        ids, values = ids[keep], values[keep]
    with pytest.raises(UploadRejected) as info:
        check_upload(ROWS, ids, values)
    message = info.value.message
    for kind in kinds:
        if kind == "constant" and kinds & {"nan", "inf", "negative", "above_one"}:
            continue  # broken values make the rest non-constant
        assert EXPECTED[kind] in message, (kind, message)
    for problem in info.value.problems:
        assert len(problem.examples) <= 10 and problem.count >= len(problem.examples)
        assert re.search(rf"\b{problem.count} {problem.kind}\b", message)


def test_align_to_rows_checks_ids_but_not_values() -> None:
    order = np.random.default_rng(4).permutation(N)
    targets = np.zeros(N)
    targets[::2] = 1.0
    aligned = align_to_rows(ROWS, ROUND_IDS[order], targets[order])
    assert aligned.dtype == np.float64 and np.array_equal(aligned, targets)
    assert np.array_equal(align_to_rows(ROWS, ROUND_IDS, np.full(N, 0.5)), np.full(N, 0.5))  # constant is fine
    with pytest.raises(UploadRejected, match="1 missing ids"):
        align_to_rows(ROWS, ROUND_IDS[1:], targets[1:])
