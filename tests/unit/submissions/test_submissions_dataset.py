"""The synthetic 2016-shaped data: sizes, ids, eras, targets and the weak signal."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pytest

from services.submissions.domain.consistency import consistency, logloss
from services.submissions.domain.dataset import (
    NUMERAI_2016_TOURNAMENT_ROWS,
    NUMERAI_2016_TRAINING_ROWS,
    Dataset,
    DatasetSpec,
    Split,
    TargetKind,
    generate,
)
from shared.errors import InvalidArgument


def test_default_shape_is_the_2016_release(full_round: Dataset) -> None:
    assert full_round.training().n_rows == NUMERAI_2016_TRAINING_ROWS == 96_320
    assert full_round.tournament().n_rows == NUMERAI_2016_TOURNAMENT_ROWS == 36_072
    assert full_round.n_features == 21
    assert full_round.features.dtype == np.float32 and full_round.targets.dtype == np.float32
    assert set(np.unique(full_round.targets).tolist()) == {0.0, 1.0}


def test_rows_are_ordered_training_validation_live_with_increasing_eras(small_round: Dataset) -> None:
    split = small_round.split
    assert (np.diff(split) >= 0).all()
    assert (np.diff(small_round.eras) >= 0).all()
    for s in Split:  # every era belongs to one split only
        eras_here = set(small_round.eras[split == s].tolist())
        others = set(small_round.eras[split != s].tolist())
        assert eras_here and not eras_here & others
    assert len(np.unique(small_round.eras[split == Split.VALIDATION])) == 4
    assert len(np.unique(small_round.eras[split == Split.LIVE])) == 1


def test_ids_are_unique_t_ids_that_do_not_leak_the_split(small_round: Dataset) -> None:
    ids = small_round.ids
    assert len(set(ids.tolist())) == len(ids)
    assert all(re.fullmatch(r"t\d{6}", i) for i in ids.tolist())
    numbers = np.array([int(i[1:]) for i in ids.tolist()])
    # Shuffled numbering: the training rows' numbers are spread over the whole range, not a prefix.
    training_numbers = numbers[small_round.split == Split.TRAINING]
    assert training_numbers.max() > len(training_numbers) * 1.2
    assert abs(np.corrcoef(numbers, np.arange(len(numbers)))[0, 1]) < 0.1


def test_generation_is_reproducible_and_seeded(small_spec: DatasetSpec) -> None:
    a, b = generate(small_spec), generate(small_spec)
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.features, b.features)
    assert np.array_equal(a.targets, b.targets)
    c = generate(DatasetSpec(**{**small_spec.__dict__, "seed": 8}))
    assert not np.array_equal(a.features, c.features)


def test_graded_targets_take_five_values_with_mode_one_half(small_spec: DatasetSpec) -> None:
    graded = generate(DatasetSpec(**{**small_spec.__dict__, "target_kind": TargetKind.GRADED}))
    values, counts = np.unique(graded.targets, return_counts=True)
    assert values.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert values[np.argmax(counts)] == 0.5
    assert graded.target_kind is TargetKind.GRADED
    assert logloss(np.full(graded.n_rows, 0.5), graded.targets) == pytest.approx(math.log(2))


def test_hidden_view_keeps_only_training_targets(small_round: Dataset) -> None:
    hidden = small_round.with_hidden_targets()
    assert not np.isnan(hidden.targets[small_round.mask(Split.TRAINING)]).any()
    assert np.isnan(hidden.targets[small_round.mask(Split.VALIDATION, Split.LIVE)]).all()
    assert not np.isnan(small_round.targets).any()  # the original is untouched


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_training", 0),
        ("n_features", 0),
        ("n_validation_eras", 0),
        ("n_live_eras", 10_000),
        ("signal", -1.0),
    ],
)
def test_bad_specs_name_the_field(small_spec: DatasetSpec, field: str, value: float) -> None:
    with pytest.raises(InvalidArgument, match=field):
        generate(DatasetSpec(**{**small_spec.__dict__, field: value}))


def test_signal_is_weak_like_2016(full_round: Dataset, fit_logistic: Callable[..., Callable]) -> None:
    """Constant 0.5 scores ln 2; a logistic model fitted on training scores ~0.690-0.692."""
    training = full_round.training()
    model = fit_logistic(training.features, training.targets)
    for split in (Split.VALIDATION, Split.LIVE):
        rows = full_round.select(full_round.mask(split))
        assert logloss(np.full(rows.n_rows, 0.5), rows.targets) == pytest.approx(math.log(2), abs=1e-12)
        assert 0.690 <= logloss(model(rows.features), rows.targets) <= 0.692
    assert abs(float(full_round.targets.mean()) - 0.5) < 0.01
    validation = full_round.select(full_round.mask(Split.VALIDATION))
    result = consistency(model(validation.features), validation.targets, validation.eras)
    assert 0.5 <= result.share <= 1.0  # beats ln 2 in most eras, as a good 2017 model did
