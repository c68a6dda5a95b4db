"""Keyed obfuscation: deterministic per key, in [0, 1], learnable, and exactly as weak as documented."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.special import ndtri

from services.scoring.domain.metrics import per_row_logloss
from services.submissions.domain.dataset import Dataset, DatasetSpec, Split, generate
from services.submissions.domain.obfuscation import FeatureObfuscation, key_fingerprint, obfuscate_dataset
from shared.errors import InvalidArgument

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def test_published_features_are_float32_in_unit_interval_and_keyed(small_round: Dataset) -> None:
    published, transform = obfuscate_dataset(small_round, KEY)
    assert published.features.dtype == np.float32
    assert published.features.min() >= 0.0 and published.features.max() <= 1.0
    again, _ = obfuscate_dataset(small_round, KEY)
    assert np.array_equal(published.features, again.features)
    other, _ = obfuscate_dataset(small_round, OTHER_KEY)
    assert not np.allclose(published.features, other.features, atol=0.05)
    assert transform.key_id == key_fingerprint(KEY) != key_fingerprint(OTHER_KEY)
    assert np.array_equal(published.ids, small_round.ids) and np.array_equal(published.targets, small_round.targets)


def test_rotation_is_orthogonal_and_mixes_every_column(small_round: Dataset) -> None:
    transform = FeatureObfuscation.fit(KEY, small_round.training().features)
    f = small_round.n_features
    assert np.allclose(transform.rotation @ transform.rotation.T, np.eye(f), atol=1e-12)
    # No published column is (a rescaling of) one raw column: every column mixes several.
    published = transform.apply(small_round.features)
    corr = np.corrcoef(small_round.features.T, published.T)[:f, f:]
    assert np.abs(corr).max() < 0.97


def test_inverse_needs_only_the_key_and_is_exact_up_to_float32(small_round: Dataset) -> None:
    transform = FeatureObfuscation.fit(KEY, small_round.training().features)
    recovered = transform.invert(transform.apply(small_round.features))
    assert np.allclose(recovered, small_round.features, atol=2e-3)


def test_known_raw_rows_reveal_the_transform_as_documented(small_round: Dataset) -> None:
    """Honesty check: n_features + 1 known (raw, published) rows solve the affine map behind Phi^-1."""
    transform = FeatureObfuscation.fit(KEY, small_round.training().features)
    published = transform.apply(small_round.features).astype(np.float64)
    known = 3 * (small_round.n_features + 1)
    design = np.hstack([ndtri(published[:known]), np.ones((known, 1))])
    solution, *_ = np.linalg.lstsq(design, small_round.features[:known].astype(np.float64), rcond=None)
    rest = np.hstack([ndtri(published[known:]), np.ones((len(published) - known, 1))]) @ solution
    assert np.allclose(rest, small_round.features[known:], atol=1e-2)


def test_models_still_learn_from_published_features(fit_logistic: Callable[..., Callable]) -> None:
    spec = DatasetSpec(
        n_training=8_000,
        n_validation=4_000,
        n_live=1_000,
        n_features=8,
        n_training_eras=8,
        n_validation_eras=4,
        signal=1.0,
        era_drift=0.0,
        seed=3,
    )
    raw = generate(spec)
    published, _ = obfuscate_dataset(raw, KEY)
    losses = {}
    for name, data in (("raw", raw), ("published", published)):
        model = fit_logistic(data.training().features, data.training().targets)
        validation = data.select(data.mask(Split.VALIDATION))
        losses[name] = float(per_row_logloss(model(validation.features), validation.targets).mean())
    assert losses["raw"] < 0.62  # a strong signal, to see the difference clearly
    assert losses["published"] < losses["raw"] + 0.01  # the squash costs a linear model very little


def test_short_keys_and_wrong_widths_are_refused(small_round: Dataset) -> None:
    with pytest.raises(InvalidArgument, match="at least 16 bytes"):
        FeatureObfuscation.fit(b"short", small_round.features)
    transform = FeatureObfuscation.fit(KEY, small_round.features)
    with pytest.raises(InvalidArgument, match=r"\(n, 6\)"):
        transform.apply(np.zeros((3, 5)))
