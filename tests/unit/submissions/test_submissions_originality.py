"""Originality: flags identical to a straightforward scipy loop (the 2017 code), at any size."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp, pearsonr, spearmanr

from services.submissions.domain.ks import ks_statistic
from services.submissions.domain.originality import (
    EarlierSubmissions,
    OriginalityRule,
    check_originality,
    closest_by_ks,
    ks_against,
    ks_screen,
    refine_ks,
)
from shared.errors import InvalidArgument

RULE = OriginalityRule.of_2017()  # the scipy loop below is the 2017 code
DEFAULT = OriginalityRule()


def reference(
    x: np.ndarray, earlier: np.ndarray, rule: OriginalityRule = RULE
) -> tuple[bool, list[float], list[float]]:
    """submission-criteria's loop: correlation pass, then KS pass, with scipy."""
    x64 = x.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: scipy warns and returns NaN
        rs = [float(pearsonr(x64, e.astype(np.float64))[0]) for e in earlier]
        # Exact mode: scipy then returns the statistic as the rational h / n, as we do (see ks.py).
        ks = [float(ks_2samp(x64, e.astype(np.float64), method="exact").statistic) for e in earlier]
    if any(abs(r) > rule.max_abs_pearson for r in rs):
        return False, rs, ks
    similar = 0
    for d in ks:
        if d < rule.duplicate_ks_statistic:
            return False, rs, ks
        if d <= rule.similar_ks_statistic:
            similar += 1
            if similar >= rule.similar_submissions_limit:
                return False, rs, ks
    return True, rs, ks


def _near(value: float, thresholds: tuple[float, ...], tolerance: float) -> bool:
    return any(abs(abs(value) - t) < tolerance for t in thresholds)


@st.composite
def rounds(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """An upload and earlier submissions: independent, near copies, rescaled, shuffled, quantised."""
    n = draw(st.integers(5, 400))
    m = draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base = rng.uniform(0.3, 0.7, n)
    kinds = draw(
        st.lists(
            st.sampled_from(["independent", "near_copy", "noisy", "shuffled", "rescaled", "ties", "same"]),
            min_size=m,
            max_size=m,
        )
    )
    earlier = []
    for kind in kinds:
        if kind == "independent":
            e = rng.uniform(0.3, 0.7, n)
        elif kind == "near_copy":
            e = base + rng.normal(0, 10 ** draw(st.floats(-6, -2)), n)
        elif kind == "noisy":
            e = base + rng.normal(0, 0.1, n)
        elif kind == "shuffled":  # same distribution (KS 0), uncorrelated
            e = rng.permutation(base)
        elif kind == "rescaled":  # perfectly correlated, another distribution
            e = 0.5 + (base - 0.5) * draw(st.floats(0.2, 0.9))
        elif kind == "ties":
            e = np.round(rng.uniform(0.3, 0.7, n), 1)
        else:
            e = base.copy()
        earlier.append(np.clip(e, 0, 1))
    upload = np.round(base, 1) if draw(st.booleans()) and n > 20 else base
    return upload.astype(np.float32), np.array(earlier, dtype=np.float32)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=rounds(), points=st.sampled_from([1, 2, 7, 64, 1024]), data=st.data())
def test_flags_match_the_scipy_reference(case: tuple[np.ndarray, np.ndarray], points: int, data: st.DataObject) -> None:
    x, earlier = case
    labels = [f"s{i}" for i in range(len(earlier))]
    # Some earlier submissions may be the uploader's own: excluded, as 2017 compared with others only.
    exclude = np.array(data.draw(st.lists(st.booleans(), min_size=len(earlier), max_size=len(earlier))))
    others = earlier[~exclude]
    other_labels = [label for label, own in zip(labels, exclude, strict=True) if not own]
    expected, rs, ks = reference(x, others)
    # Pearson is computed differently by scipy: skip cases within rounding of a threshold.
    if any(_near(r, (RULE.max_abs_pearson,), 1e-9) for r in rs if r == r):
        return
    prepared = EarlierSubmissions.build(labels, earlier, sketch_points=points)
    result = check_originality(x, prepared, RULE, exclude=exclude)
    assert result.original is expected, (result, rs, ks)
    assert result.compared == len(others)
    if result.ks is not None:  # the KS pass ran: the named submission really is the closest, exactly
        assert result.ks == min(ks)
        assert result.ks == ks[other_labels.index(result.ks_label)]
        assert result.similar_count == sum(d <= RULE.similar_ks_statistic for d in ks)
        assert f"{result.ks:.5f}" in result.reason and result.ks_label in result.reason
    if result.pearson is not None:
        assert result.pearson_label in other_labels
        finite = [abs(r) for r in rs if r == r]
        assert abs(result.pearson) == pytest.approx(max(finite), abs=1e-9)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=rounds(), points=st.sampled_from([1, 3, 16, 1024]))
def test_bounds_contain_the_exact_statistic_and_refinement_is_exact(
    case: tuple[np.ndarray, np.ndarray], points: int
) -> None:
    x, earlier = case
    prepared = EarlierSubmissions.build([str(i) for i in range(len(earlier))], earlier, sketch_points=points)
    screen = ks_screen(x, prepared)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = np.array([ks_2samp(x.astype(float), e.astype(float), method="exact").statistic for e in earlier])
    assert (screen.lower <= exact).all() and (exact <= screen.upper).all()
    for row in range(len(earlier)):
        assert refine_ks(screen, prepared, row, float(screen.lower[row])) == exact[row]
        above = refine_ks(screen, prepared, row, 0.03)
        assert above == exact[row] if exact[row] >= 0.03 else above < 0.03
    values = ks_against(screen, prepared, RULE)
    assert ((values < RULE.duplicate_ks_statistic) == (exact < RULE.duplicate_ks_statistic)).all()
    assert ((values <= RULE.similar_ks_statistic) == (exact <= RULE.similar_ks_statistic)).all()
    row, value = closest_by_ks(screen, prepared)
    assert value == exact.min() and row == int(np.argmin(exact))


def test_full_size_near_copies_against_many_earlier_submissions() -> None:
    """36,072 rows, 20 earlier submissions of four kinds; the realistic size and the 2017 verdicts."""
    rng = np.random.default_rng(11)
    n = 36_072
    base = np.clip(rng.normal(0.5, 0.03, n), 0, 1)
    earlier = []
    for i in range(20):
        kind = i % 4
        if kind == 0:
            e = rng.normal(0.5, 0.03, n)  # same distribution, uncorrelated: KS ~0.005-0.01
        elif kind == 1:
            e = rng.normal(0.5, 0.05, n)  # another distribution
        elif kind == 2:
            e = base + rng.normal(0, 0.03, n)  # correlated ~0.7
        else:
            e = 0.5 + (base - 0.5) * 1.3 + rng.normal(0, 0.005, n)
        earlier.append(np.clip(e, 0, 1))
    earlier = np.array(earlier, dtype=np.float32)
    labels = [f"model-{i}" for i in range(20)]
    prepared = EarlierSubmissions.build(labels, earlier)
    near_copy = np.clip(earlier[2] + rng.normal(0, 1e-4, n), 0, 1).astype(np.float32)
    for upload in (near_copy, rng.normal(0.5, 0.08, n).astype(np.float32), base.astype(np.float32)):
        expected, _rs, _ks = reference(upload, earlier)
        result = check_originality(upload, prepared, RULE)
        assert result.original is expected
    result = check_originality(near_copy, prepared, RULE)
    assert not result.original and result.pearson_label == "model-2" and "Pearson" in result.reason


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 6), decimals=st.sampled_from([1, 2, 7]))
def test_incremental_set_equals_a_fresh_build(seed: int, m: int, decimals: int) -> None:
    """Grown one submission at a time (the sketch order merged, not re-sorted) equals a fresh build,
    also with many tied values (coarse predictions)."""
    rng = np.random.default_rng(seed)
    earlier = np.round(rng.uniform(0, 1, (m, 300)), decimals).astype(np.float32)
    grown = EarlierSubmissions.empty(300)
    for i, row in enumerate(earlier):
        grown = grown.with_submission(f"s{i}", row)
    fresh = EarlierSubmissions.build([f"s{i}" for i in range(m)], earlier)
    assert grown.labels == fresh.labels
    for name in (
        "values",
        "sorted_values",
        "unit",
        "rank_unit",
        "sketch_values",
        "sketch_right",
        "sketch_left",
        "sketch_order",
        "sketch_sorted",
    ):
        assert np.array_equal(getattr(grown, name), getattr(fresh, name)), name
    with pytest.raises(InvalidArgument, match="the round has 300 rows"):
        grown.with_submission("bad", np.zeros(299))


def test_first_submission_is_original_and_reasons_read_well() -> None:
    x = np.linspace(0.4, 0.6, 100).astype(np.float32)
    first = check_originality(x, EarlierSubmissions.empty(100), RULE)
    assert first.original and "no earlier submission" in first.reason
    rng = np.random.default_rng(2)
    other = rng.uniform(0.1, 0.9, 100).astype(np.float32)
    result = check_originality(x, EarlierSubmissions.build(["alice/model"], other[None, :]), RULE)
    assert result.original and result.reason.startswith("original: highest |Pearson|")
    assert result.ks == pytest.approx(ks_statistic(x, other))
    duplicate = check_originality(x, EarlierSubmissions.build(["bob/model"], x[None, :]), RULE)
    assert not duplicate.original and "bob/model" in duplicate.reason and "|Pearson| 1.0000" in duplicate.reason
    shuffled = check_originality(x, EarlierSubmissions.build(["carol"], rng.permutation(x)[None, :]), RULE)
    assert not shuffled.original and "KS 0.00000 with earlier submission carol" in shuffled.reason
    assert "a duplicate" in shuffled.reason


def test_relaxed_rule_and_bad_input() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, 500).astype(np.float32)
    same_distribution = rng.uniform(0, 1, 500).astype(np.float32)
    prepared = EarlierSubmissions.build(["a"], same_distribution[None, :])
    assert not check_originality(x, prepared, RULE).original or ks_statistic(x, same_distribution) > 0.03
    lenient = OriginalityRule(duplicate_ks_statistic=0.0, similar_ks_statistic=0.0, similar_submissions_limit=2)
    assert check_originality(x, prepared, lenient).original
    with pytest.raises(InvalidArgument, match="the round has 500 rows"):
        check_originality(x[:10], prepared)
    with pytest.raises(InvalidArgument, match="finite"):
        EarlierSubmissions.build(["a"], np.array([[0.1, np.nan]]))
    with pytest.raises(InvalidArgument, match="2 labels for 1"):
        EarlierSubmissions.build(["a", "b"], np.array([[0.1, 0.2]]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=rounds(), data=st.data())
def test_default_rule_matches_pearson_and_spearman_from_scipy(
    case: tuple[np.ndarray, np.ndarray], data: st.DataObject
) -> None:
    """The default: |Pearson| > 0.95 or |Spearman| > 0.95 with any compared submission; no KS pass."""
    x, earlier = case
    exclude = np.array(data.draw(st.lists(st.booleans(), min_size=len(earlier), max_size=len(earlier))))
    others = earlier[~exclude].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rs = [float(pearsonr(x.astype(np.float64), e)[0]) for e in others]
        rhos = [float(spearmanr(x.astype(np.float64), e)[0]) for e in others]
    if any(_near(v, (0.95,), 1e-9) for v in rs + rhos if v == v):
        return
    expected = not any(abs(v) > 0.95 for v in rs + rhos if v == v)
    labels = [f"s{i}" for i in range(len(earlier))]
    result = check_originality(x, EarlierSubmissions.build(labels, earlier), DEFAULT, exclude=exclude)
    assert result.original is expected, (result, rs, rhos)
    assert result.ks is None  # the KS pass is off by default
    finite = [abs(v) for v in rhos if v == v]
    if result.rank_correlation is not None and result.decided_by != "pearson":
        assert abs(result.rank_correlation) == pytest.approx(max(finite), abs=1e-9)


def test_default_rule_flags_a_monotone_transform_and_passes_same_distributions() -> None:
    """A copy bent by a monotone map keeps its ranks (so its CORR and MMC): Spearman flags it where
    Pearson does not; an independent model with the same distribution (KS tiny) passes."""
    rng = np.random.default_rng(11)
    n = 20_000
    source = (0.5 + rng.normal(0, 0.03, n)).astype(np.float32)
    bent = (0.5 + (source.astype(np.float64) - 0.5) ** 3 * 400).astype(np.float32)
    prepared = EarlierSubmissions.build(["m_source v1"], source[None, :])
    assert abs(pearsonr(source, bent)[0]) < 0.95
    result = check_originality(bent, prepared, DEFAULT)
    assert not result.original and result.decided_by == "spearman"
    assert "|Spearman| 1.0000 with earlier submission m_source v1" in result.reason
    assert result.statistic == (pytest.approx(1.0), "m_source v1")
    twin = (0.5 + rng.normal(0, 0.03, n)).astype(np.float32)  # same distribution, independent
    assert ks_statistic(twin, source) < 0.03
    assert not check_originality(twin, prepared, RULE).original  # 2017 flags it
    assert check_originality(twin, prepared, DEFAULT).original  # the default does not
