"""Bootstrap intervals over eras: reproducible, paired, calibrated; and statistical ties."""

from __future__ import annotations

import numpy as np
import pytest

from services.scoring.domain import InvalidScoringInput, bootstrap_mean_ci, tied_with_next


def test_intervals_are_reproducible_and_depend_on_the_seed() -> None:
    series = np.random.default_rng(1).normal(0.01, 0.02, size=(3, 40))
    first = bootstrap_mean_ci(series)
    again = bootstrap_mean_ci(series)
    np.testing.assert_array_equal(first.lower, again.lower)
    np.testing.assert_array_equal(first.upper, again.upper)
    other = bootstrap_mean_ci(series, seed=1)
    assert not np.array_equal(first.lower, other.lower)
    np.testing.assert_allclose(first.mean, series.mean(axis=1))
    assert np.all(first.lower < first.mean) and np.all(first.mean < first.upper)


def test_matches_resampling_eras_one_draw_at_a_time() -> None:
    series = np.random.default_rng(2).normal(size=(2, 15))
    ci = bootstrap_mean_ci(series, resamples=300, seed=5)
    counts = np.random.default_rng(5).multinomial(15, np.full(15, 1 / 15), size=300)
    means = np.array([[np.repeat(row, draw).mean() for draw in counts] for row in series])
    np.testing.assert_allclose(ci.lower, np.quantile(means, 0.025, axis=1), rtol=1e-12)
    np.testing.assert_allclose(ci.upper, np.quantile(means, 0.975, axis=1), rtol=1e-12)


def test_coverage_is_close_to_the_nominal_level() -> None:
    """400 simulated models with true mean 0 over 60 eras: ~95% of their intervals contain 0."""
    series = np.random.default_rng(3).normal(0.0, 1.0, size=(400, 60))
    ci = bootstrap_mean_ci(series, resamples=1000)
    coverage = np.mean((ci.lower <= 0.0) & (0.0 <= ci.upper))
    assert 0.90 <= coverage <= 0.98


def test_interval_narrows_with_more_eras() -> None:
    rng = np.random.default_rng(4)
    few = bootstrap_mean_ci(rng.normal(size=(50, 10)))
    many = bootstrap_mean_ci(rng.normal(size=(50, 160)))
    assert np.median(many.upper - many.lower) < np.median(few.upper - few.lower) / 3


def test_nan_eras_are_skipped_and_all_nan_gives_nan() -> None:
    series = np.array([[0.1, np.nan, 0.3, 0.2, 0.0], [np.nan] * 5])
    ci = bootstrap_mean_ci(series, resamples=200)
    assert ci.mean[0] == pytest.approx(0.15)
    assert 0.0 <= ci.lower[0] <= ci.upper[0] <= 0.3
    assert np.isnan(ci.mean[1]) and np.isnan(ci.lower[1]) and np.isnan(ci.upper[1])


def test_inputs_are_not_modified_and_bad_arguments_are_refused() -> None:
    series = np.random.default_rng(5).normal(size=(2, 8))
    before = series.copy()
    series.flags.writeable = False
    bootstrap_mean_ci(series)
    np.testing.assert_array_equal(series, before)
    with pytest.raises(InvalidScoringInput, match="confidence"):
        bootstrap_mean_ci(series, confidence=1.0)
    with pytest.raises(InvalidScoringInput, match="at least one era"):
        bootstrap_mean_ci(np.empty((2, 0)))


def test_tied_with_next_follows_interval_overlap_in_ranking_order() -> None:
    lower = np.array([0.10, 0.05, 0.00, 0.055])
    upper = np.array([0.20, 0.09, 0.04, 0.12])
    ranking = np.array([0, 3, 1, 2])  # best first
    np.testing.assert_array_equal(tied_with_next(lower, upper, ranking), [True, True, False])
    assert tied_with_next(lower, upper, [2]).size == 0
    with pytest.raises(InvalidScoringInput, match=r"outside 0\.\.3"):
        tied_with_next(lower, upper, [0, 4])
