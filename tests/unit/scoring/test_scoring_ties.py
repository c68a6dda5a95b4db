"""Tie-aware ranking on many ties: both forms of tie groups give scipy's average ranks, and CORR and MMC
still match numerai-tools on predictions rounded as participants round them."""

from __future__ import annotations

from collections.abc import Callable
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from services.scoring.domain import ranking
from services.scoring.domain.metrics import corr_mmc
from services.scoring.domain.ranking import gauss_tables, gaussian_rank_block, sort_block

TOLERANCE = 1e-9
FORMS = {"dense": 0.0, "sparse": np.inf, "chosen": ranking._DENSE_WHEN_TIED_SHARE}
"""Share of tied neighbours from which a block gets dense codes: always, never, and as shipped."""

roundings = st.sampled_from([None, 1, 2, 3, 4, 5])
"""Decimals a submission is rounded to (None: full float32 precision, almost no ties)."""


def _block(rng: np.random.Generator, decimals: list[int | None], n: int) -> np.ndarray:
    """Submissions shaped like real ones (a logistic of a normal), each rounded its own way."""
    raw = 1.0 / (1.0 + np.exp(-rng.normal(size=(len(decimals), n))))
    rows = [row if d is None else np.round(row, d) for row, d in zip(raw, decimals, strict=True)]
    block = np.array(rows, dtype=np.float32)
    block[0, : n // 4] = block[0, n // 2]  # one long run in the middle of the order
    return block


def _average_ranks(block: np.ndarray) -> np.ndarray:
    """The 1-based average ranks a SortedBlock encodes, back in each submission's original order."""
    rows, n = block.shape
    ranked = sort_block(block)
    tables = gauss_tables(n)
    codes = ranked.sorted_values(np.arange(2 * n, dtype=np.float64), tables.codes_untied, np.dtype(np.float64))
    ranks = np.empty((rows, n))
    np.put_along_axis(ranks, ranked.order, (codes + 1) / 2, axis=1)
    return ranks


@pytest.mark.parametrize("form", FORMS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=2, max_value=400),
    decimals=st.lists(roundings, min_size=1, max_size=6),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_average_ranks_equal_scipy_rankdata_with_many_ties(
    form: str, n: int, decimals: list[int | None], seed: int
) -> None:
    block = _block(np.random.default_rng(seed), decimals, n)
    with patch.object(ranking, "_DENSE_WHEN_TIED_SHARE", FORMS[form]):
        ranks = _average_ranks(block)
        gaussian = gaussian_rank_block(block)
    expected = rankdata(block, method="average", axis=1)
    np.testing.assert_array_equal(ranks, expected)  # half-integers: exact
    tables = gauss_tables(n)
    np.testing.assert_array_equal(gaussian, tables.gauss[(2 * expected - 1).astype(np.intp)])


@pytest.mark.parametrize("form", FORMS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(min_value=20, max_value=300),
    decimals=st.lists(roundings, min_size=1, max_size=5),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_corr_and_mmc_match_numerai_tools_on_rounded_predictions(
    form: str, n: int, decimals: list[int | None], seed: int, numerai_reference: Callable
) -> None:
    rng = np.random.default_rng(seed)
    predictions = _block(rng, decimals, n)
    targets = (rng.random(n) < 0.5).astype(np.float64)
    assume(np.ptp(targets) > 0)
    meta = np.round(rng.random(n), 2)
    ids = [f"id{k:04d}" for k in rng.permutation(n)]
    try:
        ref_corr, ref_mmc = numerai_reference(predictions, targets, meta, ids)
    except AssertionError:  # numerai-tools refuses some inputs (e.g. a constant submission)
        assume(False)
    with patch.object(ranking, "_DENSE_WHEN_TIED_SHARE", FORMS[form]):
        corr, mmc = corr_mmc(predictions, targets, meta)
    np.testing.assert_allclose(corr, ref_corr, rtol=0, atol=TOLERANCE, equal_nan=True)
    np.testing.assert_allclose(mmc, ref_mmc, rtol=0, atol=TOLERANCE, equal_nan=True)


def test_predictions_rounded_to_three_decimals_are_given_dense_codes() -> None:
    raw = 1.0 / (1.0 + np.exp(-np.random.default_rng(7).normal(size=(2, 5_000))))
    assert sort_block(np.round(raw, 3).astype(np.float32)).codes is not None
    assert sort_block(raw.astype(np.float32)).codes is None  # float32 alone: a few ties, sparse
